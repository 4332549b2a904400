"""Processes die; messages do not get lost or answered twice."""

import asyncio
import os
import signal

import aiohttp

from tests.integration.platform import Platform
from tests.integration.test_message_path import collect_replies, open_client


async def test_kill_9_of_the_executor_mid_flight_loses_no_message_and_answers_none_twice(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    clients = [await open_client(platform, http) for _ in range(3)]
    sent: dict[int, list[str]] = {n: [] for n in range(3)}
    executor = platform.services["executor"]
    for i in range(10):
        for n, client in enumerate(clients):
            sent[n].append(await client.post(f"c{n} m{i}"))
        if i == 3:
            # frozen with fetched-but-unacked messages in hand, then killed: a crash mid-flight
            os.kill(executor.pid, signal.SIGSTOP)
    platform.kill("executor")
    platform.start("executor")
    for n, client in enumerate(clients):
        replies = await collect_replies(client, 10, wait_s=30)
        assert sorted(r.reply_to_id for r in replies) == sorted(sent[n]), "each answered once"
    # anything redelivered late would show up within a few ack_wait periods (2 s here)
    await asyncio.sleep(5)
    for client in clients:
        assert [a for a in await client.poll() if a.from_ and a.from_.role == "bot"] == []


async def test_sigterm_drains_and_exits_cleanly_and_a_new_router_takes_over(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    router = platform.services.pop("router")
    router.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(router.wait, 15) == 0
    assert '"draining"' in platform.log("router") and '"stopped"' in platform.log("router")
    client = await open_client(platform, http)
    message_id = await client.post("queued while no router runs")
    platform.start("router")
    replies = await client.replies_to(message_id, wait_s=20)
    assert [r.text for r in replies] == ["acme heard: queued while no router runs"]


async def test_a_restarted_egress_delivers_what_queued_up_meanwhile(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    platform.kill("egress")
    client = await open_client(platform, http)
    message_id = await client.post("who delivers me?")
    platform.start("egress")
    replies = await client.replies_to(message_id, wait_s=20)
    assert [r.text for r in replies] == ["acme heard: who delivers me?"]

"""A message's whole path through five real processes and a real nats-server."""

import asyncio
import subprocess
import sys
import time

import aiohttp
import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from greentic.bus import headers as h
from greentic.bus.topology import DEADLETTER_STREAM
from greentic.providers.webchat.client import DirectLineClient
from greentic.types import Envelope, TenantCtx, encode_envelope
from tests.integration.platform import Platform


async def open_client(platform: Platform, http: aiohttp.ClientSession, tenant: str = "acme",
                      team: str = "support", channel: str = "webchat") -> DirectLineClient:
    client = DirectLineClient(platform.url, http)
    await client.open(tenant, team, channel)
    return client


async def collect_replies(client: DirectLineClient, count: int, wait_s: float = 20) -> list:
    replies: list = []
    deadline = time.monotonic() + wait_s
    while len(replies) < count and time.monotonic() < deadline:
        replies += [a for a in await client.poll() if a.from_ and a.from_.role == "bot"]
        await asyncio.sleep(0.05)
    return replies


async def dead_letters(js: nats.js.JetStreamContext, since_seq: int) -> list:
    sub = await js.subscribe(">", stream=DEADLETTER_STREAM, ordered_consumer=True,
                             config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                   opt_start_seq=since_seq + 1))
    found = []
    try:
        while True:
            found.append(await sub.next_msg(timeout=1))
    except nats.errors.TimeoutError:
        pass
    await sub.unsubscribe()
    return found


async def deadletter_seq(js: nats.js.JetStreamContext) -> int:
    return (await js.stream_info(DEADLETTER_STREAM)).state.last_seq


async def test_three_conversations_of_ten_messages_are_answered_in_order(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    clients = [await open_client(platform, http) for _ in range(3)]
    started = time.perf_counter()

    async def converse(client: DirectLineClient, name: str) -> list[str]:
        ids = [await client.post(f"{name} message {i}") for i in range(10)]
        replies = await collect_replies(client, 10)
        assert [r.reply_to_id for r in replies] == ids, "one reply per message, in send order"
        return [r.text for r in replies]

    texts = await asyncio.gather(*(converse(c, f"conv{n}") for n, c in enumerate(clients)))
    elapsed = time.perf_counter() - started
    for n, replies in enumerate(texts):
        assert replies == [f"acme heard: conv{n} message {i}" for i in range(10)]
    print(f"\n30 messages round trip in {elapsed:.2f}s = {30 / elapsed:.0f} msg/s")


async def test_tenants_get_their_own_flows(platform: Platform,
                                           http: aiohttp.ClientSession) -> None:
    acme = await open_client(platform, http)
    globex = await open_client(platform, http, "globex", "sales", "webchat")
    await acme.post("hi")
    await globex.post("hi")
    assert [r.text for r in await collect_replies(acme, 1)] == ["acme heard: hi"]
    assert [r.text for r in await collect_replies(globex, 1)] == ["globex heard: hi"]


async def test_user_activity_is_echoed_with_its_client_id(platform: Platform,
                                                          http: aiohttp.ClientSession) -> None:
    client = await open_client(platform, http)
    message_id = await client.post("echo me")
    await collect_replies(client, 1)
    mine = [a for a in await DirectLineClient(platform.url, http, token=client.token,
                                              conversation=client.conversation).poll()
            if a.from_ and a.from_.role == "user"]
    assert [a.id for a in mine] == [message_id]
    assert mine[0].channel_data and mine[0].channel_data["clientActivityID"]


async def test_tap_shows_the_ingress_routed_and_egress_hop_of_a_message(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    tap = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "greentic", "tap", "--tenant", "acme", "--nats-url",
        platform.nats_url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert tap.stderr is not None and tap.stdout is not None
        assert b"tapping" in await asyncio.wait_for(tap.stderr.readline(), 10)
        client = await open_client(platform, http)
        message_id = await client.post("tapped")
        assert await collect_replies(client, 1)
        lines: list[str] = []
        while len([line for line in lines if message_id in line]) < 3:
            line = await asyncio.wait_for(tap.stdout.readline(), 10)
            lines.append(line.decode())
    finally:
        tap.terminate()
        await tap.wait()
    hops = [line.split()[1].split(".")[2] for line in lines if f"id={message_id}" in line]
    assert hops[:2] == ["ingress", "routed"]
    assert any(f"id={message_id}-0" in line and ".egress." in line for line in lines)
    assert "'tapped'" in lines[0] or any("'tapped'" in line for line in lines)


async def test_garbage_on_the_ingress_subject_is_dead_lettered_and_serving_goes_on(
        platform: Platform, http: aiohttp.ClientSession, js: nats.js.JetStreamContext) -> None:
    before = await deadletter_seq(js)
    await js.publish("greentic.messaging.ingress.dev.acme.support.webchat", b"{not json",
                     headers={h.MSG_ID: "garbage-1"})
    client = await open_client(platform, http)
    await client.post("still there?")
    assert [r.text for r in await collect_replies(client, 1)] == ["acme heard: still there?"]
    dead = await dead_letters(js, before)
    assert len(dead) == 1
    assert dead[0].data == b"{not json"
    assert dead[0].headers[h.DEAD_STAGE] == "ingress"
    assert "not a valid envelope" in dead[0].headers[h.DEAD_REASON]


async def test_message_for_an_unknown_channel_is_dead_lettered_with_the_reason(
        platform: Platform, js: nats.js.JetStreamContext) -> None:
    before = await deadletter_seq(js)
    ghost = Envelope(id="ghost-1", ctx=TenantCtx("dev", "nobody", "none"), channel="webchat",
                     provider="webchat", conversation="c1", text="hello?")
    await js.publish("greentic.messaging.ingress.dev.nobody.none.webchat",
                     encode_envelope(ghost), headers={h.MSG_ID: ghost.id})
    dead = await dead_letters(js, before)
    assert len(dead) == 1
    assert "no flow for tenant 'nobody'" in dead[0].headers[h.DEAD_REASON]


async def test_a_flow_that_is_not_published_ends_in_the_dead_letters_after_retries(
        platform: Platform, http: aiohttp.ClientSession, js: nats.js.JetStreamContext) -> None:
    before = await deadletter_seq(js)
    client = await open_client(platform, http, channel="broken")
    await client.post("anyone?")
    deadline = time.monotonic() + 30
    dead: list = []
    while not dead and time.monotonic() < deadline:
        dead = await dead_letters(js, before)
    assert len(dead) == 1
    assert dead[0].headers[h.DEAD_STAGE] == "routed"
    assert "gave up after 5 deliveries" in dead[0].headers[h.DEAD_REASON]
    assert "acme-pack/missing is not loaded" in dead[0].headers[h.DEAD_REASON]


async def test_a_changed_flow_file_is_served_without_restarting(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    flow = platform.root / "packs" / "globex" / "flows" / "echo.ygtc"
    original = flow.read_text()
    executor_pid = platform.services["executor"].pid
    client = await open_client(platform, http, "globex", "sales", "webchat")
    flow.write_text(original.replace("globex heard:", "globex v2 heard:"))
    try:
        assert await answer_once_it_starts_with(client, "globex v2 heard:")
        assert platform.services["executor"].pid == executor_pid
    finally:
        flow.write_text(original)
    assert await answer_once_it_starts_with(client, "globex heard:")


async def answer_once_it_starts_with(client: DirectLineClient, prefix: str) -> str:
    """Ask until the answer starts with `prefix` (a new flow version is live) or 15 s pass."""
    deadline = time.monotonic() + 15
    text = ""
    while not text.startswith(prefix) and time.monotonic() < deadline:
        await client.post("version?")
        text = (await collect_replies(client, 1))[0].text
    return text if text.startswith(prefix) else ""


async def test_a_broken_flow_file_is_refused_and_the_last_good_one_keeps_answering(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    flow = platform.root / "packs" / "globex" / "flows" / "echo.ygtc"
    original = flow.read_text()
    flow.write_text("id: echo\nnodes:\n  a:\n    routing: [nowhere]\n")
    try:
        deadline = time.monotonic() + 10
        while "pack refused" not in platform.log("pack-loader"):
            assert time.monotonic() < deadline, "pack-loader never noticed the broken flow"
            await asyncio.sleep(0.1)
        client = await open_client(platform, http, "globex", "sales", "webchat")
        await client.post("still ok?")
        assert [r.text for r in await collect_replies(client, 1)] == ["globex heard: still ok?"]
    finally:
        flow.write_text(original)


async def test_health_and_readiness_endpoints(platform: Platform,
                                              http: aiohttp.ClientSession) -> None:
    for service, port in platform.health_ports.items():
        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
            assert response.status == 200, service
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert (await response.json())["service"] == service

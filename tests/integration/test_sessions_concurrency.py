"""N executors, many conversations sent interleaved as fast as possible: every conversation's
replies come back in send order and its session counts exactly one turn per message — also when
an executor is frozen past ack_wait (a zombie that wakes up later) and another is killed -9
while holding messages.

Size: GREENTIC_CONCURRENCY_CONVERSATIONS x GREENTIC_CONCURRENCY_MESSAGES, default the issue's
200 x 20 (about 60 s for both tests on 2 cores). Backend: GREENTIC_CONCURRENCY_BACKEND
(jetstream by default; `make test-concurrency-redis` runs the same on Redis).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from greentic.providers.webchat.client import DirectLineClient
from tests.backends import RedisServer
from tests.integration.load import session_turns
from tests.integration.platform import Platform, make_platform

CONVERSATIONS = int(os.environ.get("GREENTIC_CONCURRENCY_CONVERSATIONS", "200"))
MESSAGES = int(os.environ.get("GREENTIC_CONCURRENCY_MESSAGES", "20"))
EXECUTORS = 4
BACKEND = os.environ.get("GREENTIC_CONCURRENCY_BACKEND", "jetstream")


@pytest.fixture(scope="module")
def executors(tmp_path_factory: pytest.TempPathFactory,
              redis_server: RedisServer) -> Iterator[Platform]:
    """The platform with four executors sharing the routed partitions and one session
    backend."""
    env = {"GREENTIC_SESSION_BACKEND": BACKEND, "GREENTIC_EXECUTOR_REPLICAS": str(EXECUTORS),
           "GREENTIC_MAX_DELIVER": "10"}
    if BACKEND == "redis":
        env |= {"GREENTIC_REDIS_URL": redis_server.url,
                "GREENTIC_REDIS_PREFIX": redis_server.prefix}
    platform = make_platform(Path(tmp_path_factory.mktemp("executors")), **env)
    try:
        for n in range(2, EXECUTORS + 1):
            platform.start("executor", wait=False, name=f"executor-{n}")
        for n in range(2, EXECUTORS + 1):
            platform.wait_ready(f"executor-{n}")
    except BaseException:
        platform.stop()
        raise
    yield platform
    platform.stop()


async def open_counter(platform: Platform, http: aiohttp.ClientSession) -> DirectLineClient:
    client = DirectLineClient(platform.url, http)
    await client.open("acme", "support", "counter")
    return client


async def send_all(clients: list[DirectLineClient], sent: list[list[str]],
                   between: asyncio.Event | None = None) -> None:
    """Each conversation posts its messages back to back; all conversations at once."""
    async def one(n: int, client: DirectLineClient) -> None:
        for i in range(MESSAGES):
            sent[n].append(await client.post(f"c{n} m{i}"))
            if between is not None and n == 0 and i == MESSAGES // 3:
                between.set()

    await asyncio.gather(*(one(n, c) for n, c in enumerate(clients)))


async def collect(clients: list[DirectLineClient], wait_s: float) -> list[list]:
    """Bot replies of every conversation, polling each client in turn (gently: 2 cores)."""
    replies: list[list] = [[] for _ in clients]
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        pending = [n for n, r in enumerate(replies) if len(r) < MESSAGES]
        if not pending:
            break
        for n in pending:
            replies[n] += [a for a in await clients[n].poll()
                           if a.from_ and a.from_.role == "bot"]
        await asyncio.sleep(0.3)
    return replies


def assert_in_order_exactly_once(sent: list[list[str]], replies: list[list]) -> None:
    for n, (ids, got) in enumerate(zip(sent, replies, strict=True)):
        assert [r.reply_to_id for r in got] == ids, f"conversation {n}: replies in send order"
        assert [r.text for r in got] == [f"turn {i + 1}: c{n} m{i}" for i in range(MESSAGES)], \
            f"conversation {n}: one turn per message, counted in order"


async def assert_sessions_count_every_message(platform: Platform,
                                              clients: list[DirectLineClient]) -> None:
    turns = await session_turns(platform, "counter", [c.conversation for c in clients])
    assert turns == [MESSAGES] * len(clients), "every conversation's turn counter is exact"


async def assert_nothing_more_arrives(platform: Platform, clients: list[DirectLineClient]) -> None:
    # a duplicate would come from a redelivery; give those a few ack_wait periods (2 s)
    await asyncio.sleep(6)
    for n, client in enumerate(clients):
        assert [a for a in await client.poll() if a.from_ and a.from_.role == "bot"] == [], \
            f"conversation {n}: no reply twice"


async def test_many_conversations_on_four_executors_stay_in_order_and_count_exactly(
        executors: Platform) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as http:
        clients = [await open_counter(executors, http) for _ in range(CONVERSATIONS)]
        sent: list[list[str]] = [[] for _ in clients]
        started = time.perf_counter()
        await send_all(clients, sent)
        posted = time.perf_counter() - started
        replies = await collect(clients, wait_s=240)
        elapsed = time.perf_counter() - started
        assert_in_order_exactly_once(sent, replies)
        await assert_sessions_count_every_message(executors, clients)
        total = CONVERSATIONS * MESSAGES
        health = [executors.health(name)
                  for name in ("executor", *(f"executor-{n}" for n in range(2, 5)))]
        hits = sum(stats.get("session_cache_hits", 0) for stats in health)
        conflicts = sum(stats.get("session_conflicts", 0) for stats in health)
        print(f"\n{CONVERSATIONS}x{MESSAGES} on {EXECUTORS} executors ({BACKEND}): posted in "
              f"{posted:.1f}s, all {total} replies in {elapsed:.1f}s = {total / elapsed:.0f} "
              f"turns/s; {hits} turns read their session from the owner's memory, "
              f"{conflicts} turns redone after a lost compare-and-swap")
        await assert_nothing_more_arrives(executors, clients)


async def test_a_frozen_and_a_killed_executor_lose_nothing_and_apply_nothing_twice(
        executors: Platform) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as http:
        clients = [await open_counter(executors, http) for _ in range(CONVERSATIONS)]
        sent: list[list[str]] = [[] for _ in clients]
        a_third_sent = asyncio.Event()
        sending = asyncio.create_task(send_all(clients, sent, a_third_sent))
        await a_third_sent.wait()
        # executor-2 freezes while holding messages; they are redelivered after ack_wait while
        # it sleeps, and it wakes up later with stale reads (a zombie: CAS must fence it off)
        held_2 = await wait_for_in_flight(executors, "executor-2")
        os.kill(executors.services["executor-2"].pid, signal.SIGSTOP)
        held_3 = await wait_for_in_flight(executors, "executor-3")
        executors.kill("executor-3")  # SIGKILL while holding messages
        await asyncio.sleep(6)  # > 2 x ack_wait: the frozen executor's messages moved on
        os.kill(executors.services["executor-2"].pid, signal.SIGCONT)
        await sending
        replies = await collect(clients, wait_s=240)
        assert held_2 > 0 and held_3 > 0
        assert_in_order_exactly_once(sent, replies)
        await assert_sessions_count_every_message(executors, clients)
        await assert_nothing_more_arrives(executors, clients)
        redelivered = sum(executors.health(name).get("redeliveries_recognised", 0)
                          for name in ("executor", "executor-2", "executor-4"))
        print(f"\nfreeze + kill -9 under load: executor-2 held {held_2}, executor-3 held "
              f"{held_3}; {redelivered} redelivered turns recognised as already applied")


async def wait_for_in_flight(platform: Platform, name: str) -> int:
    """Messages `name` holds right now (waits until it holds some: it is mid-run)."""
    while True:
        held = await asyncio.to_thread(lambda: platform.health(name)["in_flight"])
        if held > 0:
            return held
        await asyncio.sleep(0.01)


def greentic(platform: Platform, *args: str) -> subprocess.CompletedProcess:
    """Run the `greentic` CLI like an operator, with the platform's GREENTIC_* settings."""
    return subprocess.run([sys.executable, "-m", "greentic", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **platform.env})


async def test_operators_list_show_and_delete_a_session(executors: Platform) -> None:
    async with aiohttp.ClientSession() as http:
        client = await open_counter(executors, http)
        for text in ("one", "two"):
            replies = await client.replies_to(await client.post(text), wait_s=30)
            assert len(replies) == 1
        key = f"dev.acme.support.counter.{client.conversation}"
        listed = await asyncio.to_thread(greentic, executors, "session", "list", "--tenant",
                                         "acme", "--channel", "counter")
        assert listed.returncode == 0, listed.stderr
        assert f"{key}  turns=2  " in listed.stdout
        other = await asyncio.to_thread(greentic, executors, "session", "list", "--tenant",
                                        "globex")
        assert key not in other.stdout
        shown = await asyncio.to_thread(greentic, executors, "session", "show", key)
        assert shown.returncode == 0, shown.stderr
        document = json.loads(shown.stdout)
        assert document["key"] == key and document["turns"] == 2
        assert document["replies"] == [{"text": "turn 2: two"}]
        deleted = await asyncio.to_thread(greentic, executors, "session", "delete", key)
        assert (deleted.returncode, deleted.stdout.strip()) == (0, f"deleted {key}")
        gone = await asyncio.to_thread(greentic, executors, "session", "show", key)
        assert gone.returncode == 1 and "no session" in gone.stderr
        replies = await client.replies_to(await client.post("three"), wait_s=30)
        assert [r.text for r in replies] == ["turn 1: three"], "a deleted session starts afresh"
        bad = await asyncio.to_thread(greentic, executors, "session", "show", "dev.acme.*.x.y")
        assert bad.returncode == 1 and "not a valid subject token" in bad.stderr

"""Conversation-owning executors (runner/partitions.py), as real processes on a real nats-server:
every partition has one owner, replicas that join or leave move partitions, a killed or frozen
owner's partitions are taken over, two replicas never run turns of one conversation at once,
and an owner's session memory never wins over a session someone else wrote since."""

import asyncio
import itertools
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import msgspec
import nats
import pytest

from greentic.bus.subjects import conversation_token, partition_of
from greentic.bus.topology import SESSIONS_BUCKET
from greentic.providers.webchat.client import DirectLineClient
from greentic.session.model import SessionKey, decode_session, encode_session
from greentic.types import TenantCtx
from tests.integration.platform import Platform, make_platform

PARTITIONS = 16
LEASE_S = 3.0
CTX = TenantCtx("dev", "acme", "support")
CONVERSATIONS, MESSAGES = 24, 30


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = make_platform(Path(tmp_path_factory.mktemp("partitions")),
                            GREENTIC_EXECUTOR_REPLICAS="4", GREENTIC_LOG_LEVEL="debug",
                            GREENTIC_PARTITION_LEASE_S=str(LEASE_S))
    yield running
    running.stop()


def owned(platform: Platform, *names: str) -> dict[str, list[int]]:
    return {name: platform.health(name)["partitions"] for name in names}


async def settled(platform: Platform, names: tuple[str, ...], within_s: float = 30) -> float:
    """Seconds until the running replicas `names` own every partition exactly once, each some."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        shares = await asyncio.to_thread(owned, platform, *names)
        every = sorted(p for share in shares.values() for p in share)
        if every == list(range(PARTITIONS)) and all(shares.values()):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"partitions never settled: {shares}")


def turns(platform: Platform, *names: str) -> list[dict]:
    """Every applied turn the replicas logged: conversation, start and end (ns), who."""
    found = []
    for name in names:
        for line in platform.log(name).splitlines():
            if '"turn done"' in line:
                found.append({**json.loads(line), "replica": name})
    return found


def overlaps(records: list[dict]) -> list[tuple[dict, dict]]:
    """Pairs of turns of one conversation whose run times overlap."""
    by_conversation: dict[str, list[dict]] = {}
    for record in records:
        by_conversation.setdefault(record["conversation"], []).append(record)
    found = []
    for runs in by_conversation.values():
        runs.sort(key=lambda r: r["started_ns"])
        found += [(a, b) for a, b in itertools.pairwise(runs)
                  if b["started_ns"] < a["ended_ns"]]
    return found


async def counter_chat(http: aiohttp.ClientSession, platform: Platform) -> DirectLineClient:
    client = DirectLineClient(platform.url, http)
    await client.open("acme", "support", "counter")
    return client


async def say(client: DirectLineClient, text: str) -> list[str]:
    """Send one message; the texts of the bot's replies to it."""
    sent = await client.post(text)
    return [a.text or "" for a in await client.replies_to(sent, wait_s=20, expected=1)]


def partition(client: DirectLineClient) -> int:
    return partition_of(CTX, "counter", conversation_token(client.conversation), PARTITIONS)


async def converse(platform: Platform, http: aiohttp.ClientSession,
                   during: Callable[[], Awaitable[None]]) -> list[list[str]]:
    """CONVERSATIONS counter chats, MESSAGES each (one after the other's reply), sent while
    `during()` runs; the replies of each."""
    clients = [await counter_chat(http, platform) for _ in range(CONVERSATIONS)]

    async def chat(client: DirectLineClient) -> list[str]:
        texts = []
        for n in range(MESSAGES):
            sent = await client.post(f"m{n}")
            texts += [a.text or "" for a in await client.replies_to(sent, wait_s=60)]
        return texts

    chats = asyncio.gather(*(chat(c) for c in clients))
    await during()
    return await chats


async def test_a_replica_forgets_the_sessions_of_partitions_it_hands_on(
        platform: Platform) -> None:
    """The module's first test: the replica has written exactly these 20 sessions."""
    await settled(platform, ("executor",))
    async with aiohttp.ClientSession() as http:
        clients = [await counter_chat(http, platform) for _ in range(20)]
        for client in clients:
            assert await say(client, "hi") == ["turn 1: hi"]
    assert platform.health("executor")["session_cache"] == 20
    platform.start("executor", name="executor-4")
    try:
        await settled(platform, ("executor", "executor-4"))
        kept = owned(platform, "executor")["executor"]
        assert 0 < len(kept) < PARTITIONS
        assert platform.health("executor")["session_cache"] == \
            sum(partition(c) in kept for c in clients)
    finally:
        platform.services["executor-4"].send_signal(signal.SIGTERM)
        platform.services["executor-4"].wait(30)


async def test_partitions_move_on_join_leave_kill_and_freeze_and_no_turn_overlaps(
        platform: Platform) -> None:
    await settled(platform, ("executor",))
    names = ["executor"]

    async def faults() -> None:
        await asyncio.sleep(1)
        platform.start("executor", wait=False, name="executor-2")  # joins mid-load
        await asyncio.to_thread(platform.wait_ready, "executor-2", 60)
        names.append("executor-2")
        print(f"\njoin: settled in {await settled(platform, ('executor', 'executor-2')):.1f}s")
        platform.start("executor", wait=False, name="executor-3")
        await asyncio.to_thread(platform.wait_ready, "executor-3", 60)
        names.append("executor-3")
        await settled(platform, ("executor", "executor-2", "executor-3"))
        os.kill(platform.services["executor-3"].pid, signal.SIGSTOP)  # frozen past its lease
        taken = await settled(platform, ("executor", "executor-2"))
        print(f"freeze: its partitions taken over after {taken:.1f}s")
        await asyncio.sleep(1)
        os.kill(platform.services["executor-3"].pid, signal.SIGCONT)  # wakes up, a zombie
        await settled(platform, ("executor", "executor-2", "executor-3"))
        platform.kill("executor-2")  # SIGKILL of an owner
        taken = await settled(platform, ("executor", "executor-3"))
        print(f"SIGKILL: its partitions taken over after {taken:.1f}s")

    async with aiohttp.ClientSession() as http:
        replies = await converse(platform, http, faults)
    for texts in replies:  # every message answered once, in order, counted once
        assert texts == [f"turn {n + 1}: m{n}" for n in range(MESSAGES)], texts
    records = turns(platform, *names)
    assert len({r["replica"] for r in records}) == 3, "every replica ran turns"
    assert overlaps(records) == []
    platform.services["executor-3"].send_signal(signal.SIGTERM)  # leaves: hands on
    platform.services["executor-3"].wait(30)
    await settled(platform, ("executor",))


async def test_an_owners_memory_never_wins_over_a_session_written_elsewhere(
        platform: Platform) -> None:
    await settled(platform, ("executor",))
    async with aiohttp.ClientSession() as http:
        client = await counter_chat(http, platform)
        assert await say(client, "one") == ["turn 1: one"]
        before = platform.health("executor")
        # another writer (an operator, another owner) changes the session behind the owner
        key = SessionKey(CTX, "counter", conversation_token(client.conversation))
        nc = await nats.connect(platform.nats_url)
        try:
            kv = await nc.jetstream().key_value(SESSIONS_BUCKET)
            entry = await kv.get(key.path())
            changed = msgspec.structs.replace(decode_session(entry.value), turns=41)
            await kv.update(key.path(), encode_session(changed), last=entry.revision)
        finally:
            await nc.close()
        assert await say(client, "two") == ["turn 42: two"]
        after = platform.health("executor")
    assert after["session_conflicts"] == before["session_conflicts"] + 1
    assert after["session_cache_hits"] > before["session_cache_hits"]

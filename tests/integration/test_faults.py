"""The fault suite: a steady load (Telegram chats, a component call and a session write per
turn, two executors) and one fault in the middle of it per test. After each: every message
answered exactly once at the provider, in order per chat, turn counters exact, no dead
letters. Each test appends its figures to .greentic/test-artifacts/reliability.json
(`python -m tests.integration.reliability_report` renders them into docs/reliability.md).

Size: 30 chats x 10 messages by default; GREENTIC_CHAOS_FULL=1 (`make chaos`) runs the
issue's 100 chats x 20 messages (2,000).
"""

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import pytest

from greentic.bus.topology import HOPS, partition_consumer
from greentic.hosting.launcher import free_port
from tests.guests import build_guest
from tests.integration.load import (
    CHANNEL,
    Figures,
    Load,
    TelegramDouble,
    dead_letter_count,
    load_channel,
    misdelivered,
    record_figures,
    score,
    session_turns,
    wait_until,
    write_load_pack,
)
from tests.integration.platform import Platform, make_platform

FULL = os.environ.get("GREENTIC_CHAOS_FULL") == "1"
CONVERSATIONS, MESSAGES, RATE = (100, 20, 50.0) if FULL else (30, 10, 30.0)
QUIET_S = 5.0
"""After the last reply: how long a duplicate (a redelivery, ack_wait = 2 s) may take."""
DOUBLE_PORT = free_port()
EXECUTORS = ("executor", "executor-2")

PARTITIONS = 16
Fault = Callable[[Platform, TelegramDouble, Load], Awaitable[float | None]]
"""Injects the fault; executor faults return how long until every partition had an owner."""


def start_platform(root: Path, guests_dir: Path, **options) -> Platform:
    """The test platform with the load channel and a second executor."""
    write_load_pack(root / "load-pack", build_guest("tiny", guests_dir))
    platform = make_platform(root, load_channel(DOUBLE_PORT),
                             {"load-pack": str(root / "load-pack")},
                             GREENTIC_EXECUTOR_REPLICAS="2", GREENTIC_MAX_DELIVER="10",
                             **options)
    try:
        platform.start("executor", name="executor-2")
    except BaseException:
        platform.stop()
        raise
    return platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("faults"), tmp_path_factory.mktemp("tiny"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The same on a 3-node NATS cluster, every stream and bucket with 3 replicas."""
    running = start_platform(tmp_path_factory.mktemp("cluster"), tmp_path_factory.mktemp("tiny"),
                             nats_nodes=3, GREENTIC_NATS_REPLICAS="3")
    yield running
    running.stop()


@pytest.fixture
async def double() -> AsyncIterator[TelegramDouble]:
    provider = TelegramDouble(DOUBLE_PORT)
    await provider.start()
    yield provider
    await provider.stop()


async def survive(platform: Platform, double: TelegramDouble, name: str, fault: Fault) -> Figures:
    """Run the load, inject `fault` once a third of the replies arrived, score the outcome."""
    load = Load(platform, double, CONVERSATIONS, MESSAGES, RATE)
    dead_before = await dead_letter_count(platform)
    started = time.monotonic()
    sending = asyncio.create_task(load.send())
    assert await load.wait_until_delivered(1 / 3, within_s=60), \
        f"the load runs before the fault: {load.delivered_so_far()} delivered, " \
        f"{await asyncio.to_thread(health, platform)}"
    fault_at = time.monotonic()
    handover_s = await fault(platform, double, load)
    await sending
    await load.wait_until_delivered(1.0, within_s=180)  # what is missing then counts as lost
    await asyncio.sleep(QUIET_S)  # the window in which a duplicate would show up
    turns = await session_turns(platform, CHANNEL, [str(load.chat_id(n))
                                                    for n in range(load.conversations)])
    figures = dataclasses.replace(
        score(load, name, fault_at, started, await dead_letter_count(platform) - dead_before,
              turns), handover_s=None if handover_s is None else round(handover_s, 1))
    record_figures(figures, "full" if FULL else "reduced")
    print(f"\n{figures}")
    if figures.problems():
        print(f"misdelivered: {misdelivered(load)}")
    return figures


def health(platform: Platform) -> dict[str, dict]:
    """Every running service's counters (for a failure's message)."""
    return {name: platform.health(name) for name in platform.services}


async def restart(platform: Platform, name: str) -> None:
    """Start a service again and wait until it is ready. The process is started from the event
    loop's thread: a child started from a worker thread gets SIGTERM when that thread ends
    (PR_SET_PDEATHSIG follows the thread, not the process)."""
    service = "executor" if name.startswith("executor") else name
    platform.start(service, wait=False, name=name)
    await asyncio.to_thread(platform.wait_ready, name, 60)


async def kill_and_restart(platform: Platform, name: str) -> None:
    platform.kill(name)
    await restart(platform, name)


async def until(condition: Callable[[], bool], within_s: float = 30) -> None:
    assert await wait_until(condition, within_s), "the fault's precondition came about"


def owners_cover_every_partition(platform: Platform, names: tuple[str, ...]) -> bool:
    shares = [platform.health(name)["partitions"] for name in names]
    return sorted(p for share in shares for p in share) == list(range(PARTITIONS))


async def partitions_owned_again(platform: Platform, names: tuple[str, ...],
                                 since: float) -> float:
    """Seconds from `since` until the replicas `names` own every partition once."""
    await until(lambda: owners_cover_every_partition(platform, names), within_s=60)
    return time.monotonic() - since


async def test_sigkill_of_an_executor_then_its_restart(platform: Platform,
                                                       double: TelegramDouble) -> None:
    async def fault(platform: Platform, _: TelegramDouble, __: Load) -> float:
        await until(lambda: platform.health("executor-2")["in_flight"] > 0)
        killed_at = time.monotonic()
        await kill_and_restart(platform, "executor-2")
        return await partitions_owned_again(platform, EXECUTORS, killed_at)

    figures = await survive(platform, double, "SIGKILL one executor, restart it", fault)
    assert figures.problems() == {}


async def test_sigstop_of_an_executor_past_its_partition_lease(platform: Platform,
                                                               double: TelegramDouble) -> None:
    async def fault(platform: Platform, _: TelegramDouble, __: Load) -> float:
        await until(lambda: platform.health("executor-2")["in_flight"] > 0)
        frozen = platform.services["executor-2"].pid
        os.kill(frozen, signal.SIGSTOP)
        stopped_at = time.monotonic()
        taken = await partitions_owned_again(platform, ("executor",), stopped_at)
        await asyncio.sleep(1)
        os.kill(frozen, signal.SIGCONT)  # wakes up holding turns it may no longer run
        await until(lambda: platform.health("executor-2")["partitions"] != [], within_s=60)
        return taken

    figures = await survive(platform, double, "SIGSTOP one executor past its lease", fault)
    assert figures.problems() == {}


async def test_an_executor_joining_mid_load(platform: Platform, double: TelegramDouble) -> None:
    async def fault(platform: Platform, _: TelegramDouble, __: Load) -> float:
        joined_at = time.monotonic()
        await restart(platform, "executor-3")
        return await partitions_owned_again(platform, (*EXECUTORS, "executor-3"), joined_at)

    try:
        figures = await survive(platform, double, "a third executor joins mid-load", fault)
    finally:  # the other faults run on two executors
        platform.services["executor-3"].terminate()
        await asyncio.to_thread(platform.services["executor-3"].wait, 30)
        del platform.services["executor-3"]
    assert figures.problems() == {}


async def test_sigkill_of_the_router(platform: Platform, double: TelegramDouble) -> None:
    async def fault(platform: Platform, _: TelegramDouble, __: Load) -> None:
        await kill_and_restart(platform, "router")

    figures = await survive(platform, double, "SIGKILL the router", fault)
    assert figures.problems() == {}


async def test_sigkill_of_egress_while_the_provider_is_slow(platform: Platform,
                                                            double: TelegramDouble) -> None:
    async def fault(platform: Platform, double: TelegramDouble, _: Load) -> None:
        double.slow_down()
        # egress holds calls at the provider, and every call answered before has been recorded
        await until(lambda: double.held_open() > 0 and time.monotonic() - double.last_answer > 1)
        platform.kill("egress")
        await until(lambda: double.held_open() == 0)  # the provider saw the connections go
        double.speed_up()
        await restart(platform, "egress")

    figures = await survive(platform, double, "SIGKILL egress, provider slow", fault)
    assert figures.problems() == {}


async def test_sigkill_of_ingress_between_accept_and_publish(platform: Platform,
                                                             double: TelegramDouble) -> None:
    async def fault(platform: Platform, double: TelegramDouble, _: Load) -> None:
        # frozen with webhook requests accepted and unanswered, then killed
        os.kill(platform.services["ingress"].pid, signal.SIGSTOP)
        await until(lambda: double.posting >= 3)
        await kill_and_restart(platform, "ingress")

    figures = await survive(platform, double, "SIGKILL ingress mid-request", fault)
    assert figures.problems() == {}
    assert figures.webhook_retries > 0, "the provider was told to retry"


async def test_restart_of_nats_server(platform: Platform, double: TelegramDouble) -> None:
    async def fault(platform: Platform, _: TelegramDouble, __: Load) -> None:
        [node] = platform.nats_nodes
        platform.kill_nats(node)
        platform.start_nats_node(node)  # from this thread, see restart()

    figures = await survive(platform, double, "restart nats-server (SIGKILL)", fault)
    assert figures.problems() == {}


async def test_nats_server_paused_for_five_seconds(platform: Platform,
                                                   double: TelegramDouble) -> None:
    async def fault(platform: Platform, _: TelegramDouble, __: Load) -> None:
        assert platform.nats is not None
        os.kill(platform.nats.pid, signal.SIGSTOP)
        await asyncio.sleep(5)  # the fault's length, not a synchronisation
        os.kill(platform.nats.pid, signal.SIGCONT)

    figures = await survive(platform, double, "SIGSTOP nats-server 5 s", fault)
    assert figures.problems() == {}


async def test_provider_answers_500_for_ten_seconds(platform: Platform,
                                                    double: TelegramDouble) -> None:
    async def fault(_: Platform, double: TelegramDouble, __: Load) -> None:
        double.fail_for(10)

    figures = await survive(platform, double, "provider 500s for 10 s", fault)
    assert figures.problems() == {}


async def executor_consumer_leader(platform: Platform) -> str:
    nc = await nats.connect(platform.nats_servers)
    try:
        info = await nc.jetstream().consumer_info(HOPS["routed"].stream, partition_consumer(0))
        assert info.cluster is not None and info.cluster.leader
        return info.cluster.leader
    finally:
        await nc.close()


async def replicas_of_every_stream(platform: Platform) -> set[int]:
    nc = await nats.connect(platform.nats_servers)
    try:
        return {info.config.num_replicas for info in await nc.jetstream().streams_info()}
    finally:
        await nc.close()


async def test_cluster_loses_the_node_leading_the_executor_consumer(
        cluster: Platform, double: TelegramDouble) -> None:
    async def fault(platform: Platform, double: TelegramDouble, _: Load) -> None:
        leader = await executor_consumer_leader(platform)
        [node] = [n for n in platform.nats_nodes if n.name == leader]
        platform.kill_nats(node)
        delivered = double.delivered()
        await until(lambda: double.delivered() > delivered + 20, within_s=60)  # serving on two
        platform.start_nats_node(node)  # from this thread, see restart()

    assert await replicas_of_every_stream(cluster) == {3}, "streams, KV buckets, object store"
    figures = await survive(cluster, double, "3-node cluster: SIGKILL the consumer leader",
                            fault)
    assert figures.problems() == {}

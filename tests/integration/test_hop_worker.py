"""A hop's worker keeps each conversation in stream order when a message must be retried and
when it starts while a crashed replica still holds messages (real nats-server)."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from greentic.bus import headers as h
from greentic.bus.topology import Hop
from greentic.bus.worker import HopWorker
from greentic.errors import RetryLater
from tests.backends import NatsServer

ACK_WAIT_S = 1.0
_streams = itertools.count()


@pytest.fixture
async def hop(nats_server: NatsServer) -> AsyncIterator[tuple[JetStreamContext, Hop]]:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    n = next(_streams)
    hop = Hop("egress", f"ORDER_{n}", "order")
    await js.add_stream(StreamConfig(name=hop.stream, subjects=[f"order{n}.>"]))
    await js.add_consumer(hop.stream, consumer_config(hop))
    yield js, hop
    await js.delete_stream(hop.stream)
    await nc.close()


async def publish(js: JetStreamContext, hop: Hop, conversation: str, number: int) -> None:
    await js.publish(f"order{hop.stream.split('_')[1]}.{conversation}", str(number).encode(),
                     headers={h.CONVERSATION: conversation})


class Recorder:
    """A handler that records what it handled; `fail_first` fails that message's first try."""

    def __init__(self, fail_first: int | None = None) -> None:
        self.handled: list[int] = []
        self.fail_first = fail_first
        self.failed = asyncio.Event()
        self.changed = asyncio.Event()

    async def __call__(self, msg: Msg) -> None:
        number = int(msg.data)
        if number == self.fail_first and msg.metadata.num_delivered == 1:
            self.failed.set()
            raise RetryLater("the provider is down", 1.0)
        self.handled.append(number)
        self.changed.set()

    async def wait_for(self, count: int) -> list[int]:
        async with asyncio.timeout(30):
            while len(self.handled) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.handled


def consumer_config(hop: Hop) -> ConsumerConfig:
    return ConsumerConfig(durable_name=hop.consumer, ack_policy=AckPolicy.EXPLICIT,
                          ack_wait=ACK_WAIT_S, max_deliver=10)


async def run_worker(js: JetStreamContext, hop: Hop, handler: Callable[[Msg], Awaitable[None]],
                     **options: float) -> HopWorker:
    worker = HopWorker(js, hop, handler, max_deliver=10, ack_wait_s=ACK_WAIT_S, **options)
    asyncio.get_running_loop().create_task(worker.run())
    return worker


async def test_later_messages_wait_for_an_earlier_one_being_retried(
        hop: tuple[JetStreamContext, Hop]) -> None:
    js, stream = hop
    recorder = Recorder(fail_first=0)
    worker = await run_worker(js, stream, recorder)
    await publish(js, stream, "x", 0)
    await recorder.failed.wait()  # 0 waits out its back-off; 1 and 2 arrive meanwhile
    await publish(js, stream, "x", 1)
    await publish(js, stream, "x", 2)
    assert await recorder.wait_for(3) == [0, 1, 2]
    await worker.stop()


async def test_a_new_worker_runs_what_a_crashed_one_held_before_newer_messages(
        nats_server: NatsServer, hop: tuple[JetStreamContext, Hop]) -> None:
    js, stream = hop
    crashed = await nats.connect(nats_server.url)
    held = await crashed.jetstream().pull_subscribe_bind(durable=stream.consumer,
                                                         stream=stream.stream)
    await publish(js, stream, "x", 0)
    await publish(js, stream, "x", 1)
    assert len(await held.fetch(2, timeout=5)) == 2  # fetched, never acked
    await crashed.close()
    await publish(js, stream, "x", 2)  # arrives at once; 0 and 1 only after ack_wait
    recorder = Recorder()
    worker = await run_worker(js, stream, recorder)
    assert await recorder.wait_for(3) == [0, 1, 2]
    await worker.stop()


async def test_a_handler_longer_than_ack_wait_keeps_its_delivery(
        hop: tuple[JetStreamContext, Hop]) -> None:
    js, stream = hop
    calls: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def slow(msg: Msg) -> None:  # e.g. egress waiting for its channel's send slot
        calls.append((int(msg.data), msg.metadata.num_delivered))
        await asyncio.sleep(4 * ACK_WAIT_S)
        done.set()

    worker = await run_worker(js, stream, slow)
    await publish(js, stream, "x", 0)
    async with asyncio.timeout(30):
        await done.wait()
    await asyncio.sleep(2 * ACK_WAIT_S)  # a redelivery, had there been one, would show now
    await worker.stop()
    assert calls == [(0, 1)]  # handled once, on its first delivery
    info = await js.consumer_info(stream.stream, stream.consumer)
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)


async def test_messages_waiting_behind_a_long_handler_keep_their_delivery_too(
        hop: tuple[JetStreamContext, Hop]) -> None:
    js, stream = hop
    calls: list[tuple[int, int]] = []
    third = asyncio.Event()

    async def first_slow(msg: Msg) -> None:  # e.g. a backlog paced at the provider's rate
        calls.append((int(msg.data), msg.metadata.num_delivered))
        if int(msg.data) == 0:
            await asyncio.sleep(4 * ACK_WAIT_S)
        if len(calls) == 3:
            third.set()

    worker = await run_worker(js, stream, first_slow)
    for number in range(3):
        await publish(js, stream, "x", number)
    async with asyncio.timeout(30):
        await third.wait()
    await asyncio.sleep(2 * ACK_WAIT_S)  # a redelivery, had there been one, would show now
    await worker.stop()
    assert calls == [(0, 1), (1, 1), (2, 1)]  # in order, each once, on its first delivery
    info = await js.consumer_info(stream.stream, stream.consumer)
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)


async def test_the_keep_alive_limit_counts_a_handler_from_its_start_not_from_its_wait(
        hop: tuple[JetStreamContext, Hop]) -> None:
    js, stream = hop
    calls: list[tuple[int, int]] = []
    second_done = asyncio.Event()

    async def slowish(msg: Msg) -> None:
        calls.append((int(msg.data), msg.metadata.num_delivered))
        await asyncio.sleep(2 * ACK_WAIT_S)  # each alone under the limit, both together over
        if int(msg.data) == 1:
            second_done.set()

    worker = await run_worker(js, stream, slowish, keepalive_limit_s=3 * ACK_WAIT_S)
    for number in range(2):
        await publish(js, stream, "x", number)
    async with asyncio.timeout(30):
        await second_done.wait()
    await asyncio.sleep(2 * ACK_WAIT_S)
    await worker.stop()
    assert calls == [(0, 1), (1, 1)]
    info = await js.consumer_info(stream.stream, stream.consumer)
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)

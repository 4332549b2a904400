"""The shape shared by router, executor and egress: one hop's consumer, one handler."""

import asyncio
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from greentic.bus.subjects import Stage, conversation_token, parse_message_subject
from greentic.bus.topology import HOPS, Hop, ensure_consumer
from greentic.bus.worker import HopWorker
from greentic.config.settings import Settings
from greentic.errors import DeadLetter, EnvelopeError, SubjectError
from greentic.telemetry.metrics import CONSUMER_LAG
from greentic.types.envelope import Envelope, decode_envelope

LAG_INTERVAL_S = 5.0


async def report_lag(js: JetStreamContext, hops: Callable[[], list[Hop]]) -> None:
    """The consumer lag of each of `hops()` (asked anew every round) as a metric — what an
    autoscaler watches — every LAG_INTERVAL_S, until cancelled."""
    while True:
        for hop in hops():
            try:
                info = await js.consumer_info(hop.stream, hop.consumer)
            except (nats.errors.Error, TimeoutError):
                continue  # reported again on the next round
            set_lag(hop, info.num_pending or 0)
        await asyncio.sleep(LAG_INTERVAL_S)


def set_lag(hop: Hop, pending: int) -> None:
    CONSUMER_LAG.set(pending, {"stream": hop.stream, "consumer": hop.consumer})


def read_envelope(subject: str, data: bytes) -> Envelope:
    """Decode a hop's message and check it against its subject; DeadLetter if it never can be."""
    try:
        where = parse_message_subject(subject)
        envelope = decode_envelope(data)
    except (SubjectError, EnvelopeError) as exc:
        raise DeadLetter(str(exc)) from None
    if envelope.ctx != where.ctx or envelope.channel != where.channel:
        raise DeadLetter("envelope tenant/channel does not match its subject")
    if where.conversation is not None and \
            where.conversation != conversation_token(envelope.conversation):
        raise DeadLetter("envelope conversation does not match its subject")
    return envelope


class HopService:
    """Reads the stream of `stage` with the shared durable consumer and calls `handle`."""

    name = "hop"
    stage: Stage
    max_in_flight = 1024
    """Messages one replica holds at once (fetched, waiting or running)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._worker: HopWorker | None = None
        self._js: JetStreamContext | None = None
        self._nc: Client | None = None

    @property
    def nc(self) -> Client:
        assert self._nc is not None, "start() first"
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "start() first"
        return self._js

    async def prepare(self) -> None:
        """Hook: what must be ready before the first message is fetched."""

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        self._js = js
        self._nc = nc
        await self.prepare()
        hop = HOPS[self.stage]
        await ensure_consumer(js, hop, ack_wait_s=self.settings.ack_wait_s,
                              max_deliver=self.settings.max_deliver)
        self._worker = HopWorker(js, hop, self.handle, max_deliver=self.settings.max_deliver,
                                 batch=self.settings.fetch_batch,
                                 ack_wait_s=self.settings.ack_wait_s,
                                 max_in_flight=self.max_in_flight)

    async def run(self) -> None:
        assert self._worker is not None
        lag = asyncio.create_task(report_lag(self.js, lambda: [HOPS[self.stage]]))
        try:
            await self._worker.run()
        finally:
            lag.cancel()

    async def stop(self) -> None:
        if self._worker is not None:
            await self._worker.stop()

    def stats(self) -> dict[str, Any]:
        return self._worker.stats() if self._worker else {}

    async def handle(self, msg: Msg) -> None:
        raise NotImplementedError

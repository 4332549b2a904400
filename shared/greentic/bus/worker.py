"""The consumer loop every hop runs: fetch a batch → handle → ack, or retry, or dead-letter."""

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from greentic.bus import headers as h
from greentic.bus.subjects import deadletter_subject
from greentic.bus.topology import Hop
from greentic.errors import DeadLetter, RetryLater

log = structlog.get_logger(__name__)

Handler = Callable[[Msg], Awaitable[None]]


@dataclass
class WorkerCounters:
    """What a worker did since it started (exposed on the health port)."""

    handled: int = 0
    retried: int = 0
    dead_lettered: int = 0


@dataclass
class HopWorker:
    """Reads one hop's durable pull consumer. Messages of one conversation run one after
    another in stream order; different conversations run concurrently.

    A message is acked only after `handler` returned, i.e. after its effect is durable.
    `DeadLetter` from the handler dead-letters at once; any other error naks with back-off
    until `max_deliver`, then dead-letters with the last reason.
    """

    js: JetStreamContext
    hop: Hop
    handler: Handler
    max_deliver: int
    batch: int = 64
    retry_delays_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    counters: WorkerCounters = field(default_factory=WorkerCounters)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Fetch and handle until `stop()`; the batch in hand is finished and acked first."""
        sub = await self.js.pull_subscribe_bind(durable=self.hop.consumer, stream=self.hop.stream)
        try:
            while not self._stopping.is_set():
                try:
                    msgs = await sub.fetch(self.batch, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue  # nats-py raises either, depending on where the wait ended
                except nats.errors.Error as exc:  # reconnecting, closed, no responders…
                    log.warning("fetch failed; retrying", hop=self.hop.stage, error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                await self._handle_batch(msgs)
        finally:
            self._stopped.set()

    def stats(self) -> dict[str, int]:
        """The counters, for /healthz."""
        return dataclasses.asdict(self.counters)

    async def stop(self) -> None:
        """Stop fetching and wait for the batch in flight (graceful drain)."""
        self._stopping.set()
        await self._stopped.wait()

    async def _handle_batch(self, msgs: list[Msg]) -> None:
        by_conversation: dict[str, list[Msg]] = {}
        for msg in msgs:
            key = (msg.headers or {}).get(h.CONVERSATION) or f"seq:{msg.reply}"
            by_conversation.setdefault(key, []).append(msg)
        await asyncio.gather(*(self._handle_in_order(group) for group in by_conversation.values()))

    async def _handle_in_order(self, group: list[Msg]) -> None:
        for index, msg in enumerate(group):
            if not await self._handle_one(msg):
                # keep the conversation's order: later messages wait for the failed one
                for later in group[index + 1:]:
                    await later.nak(delay=self.retry_delays_s[0])
                return

    async def _handle_one(self, msg: Msg) -> bool:
        try:
            await self.handler(msg)
        except DeadLetter as exc:
            await self._dead_letter(msg, str(exc))
            return True
        except Exception as exc:  # one bad message never kills the loop
            reason = f"{type(exc).__name__}: {exc}"
            delivered = msg.metadata.num_delivered
            if delivered >= self.max_deliver:
                await self._dead_letter(msg, f"gave up after {delivered} deliveries: {reason}")
                return True
            self.counters.retried += 1
            delay = self.retry_delays_s[min(delivered, len(self.retry_delays_s)) - 1]
            if isinstance(exc, RetryLater) and exc.delay_s is not None:
                delay = min(max(exc.delay_s, 0.0), 300.0)
            log.warning("handling failed; will retry", hop=self.hop.stage, subject=msg.subject,
                        delivered=delivered, delay_s=delay, error=reason)
            await msg.nak(delay=delay)
            return False
        await msg.ack()
        self.counters.handled += 1
        return True

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        original = msg.headers or {}
        stream_seq = msg.metadata.sequence.stream
        headers = {
            **original,
            h.MSG_ID: f"{self.hop.stream}-{stream_seq}",
            h.DEAD_REASON: reason[:1000],
            h.DEAD_STAGE: self.hop.stage,
            h.DEAD_SUBJECT: msg.subject,
        }
        await self.js.publish(deadletter_subject(self.hop.stage), msg.data, headers=headers)
        await msg.ack()
        self.counters.dead_lettered += 1
        log.error("dead-lettered", hop=self.hop.stage, subject=msg.subject, reason=reason,
                  msg_id=original.get(h.MSG_ID))

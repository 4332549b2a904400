"""The consumer loop every hop runs: fetch a batch → handle → ack, or retry, or dead-letter."""

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry.trace import Span, SpanKind

from greentic.bus import headers as h
from greentic.bus.fetch import BatchFetcher
from greentic.bus.subjects import deadletter_subject
from greentic.bus.topology import Hop
from greentic.errors import DeadLetter, RetryLater
from greentic.telemetry.metrics import DEAD_LETTERS, ERRORS, MESSAGES
from greentic.telemetry.tracing import mark_error, span

log = structlog.get_logger(__name__)

Handler = Callable[[Msg], Awaitable[None]]

KEEPALIVE_LIMIT_S = 600.0
"""A message waiting behind its conversation, or whose handler runs, longer than this (a
stuck handler, or waiting behind one) is no longer marked in progress: ack_wait hands it on."""
PAUSED_FETCH_S = 0.05
HELD_SCAN_LIMIT = 10_000
"""At start, at most this many unacked stream positions are read to find held conversations."""


@dataclass
class _Parked:
    """Messages of one conversation kept back (marked in progress), then handed on oldest
    first: a message up to `through` passes, anything later waits here."""

    through: int
    """Stream sequence of the last message allowed through."""
    until: float
    """Loop time at which the parked messages are released regardless."""
    blocker: int | None = None
    """A failed message being retried: released when it is done."""
    floor: int | None = None
    """Messages up to here were held by another (possibly dead) process: released when the
    consumer's ack floor reaches it (they were done elsewhere) or at `until`."""
    msgs: dict[int, Msg] = field(default_factory=dict)


@dataclass
class WorkerCounters:
    """What a worker did since it started (exposed on the health port)."""

    handled: int = 0
    retried: int = 0
    dead_lettered: int = 0


@dataclass
class HopWorker:
    """Reads one hop's durable pull consumer. Messages of one conversation run one after
    another in arrival order (a chain per conversation); different conversations run
    concurrently, and fetching goes on while some messages wait (up to `max_in_flight`).

    A message is acked only after `handler` returned, i.e. after its effect is durable.
    `DeadLetter` from the handler dead-letters at once; any other error naks with back-off
    until `max_deliver`, then dead-letters with the last reason. A failed message naks the
    later messages of its conversation that this worker holds, keeping their order.
    """

    js: JetStreamContext
    hop: Hop
    handler: Handler
    max_deliver: int
    batch: int = 64
    retry_delays_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    max_in_flight: int = 1024
    ack_wait_s: float = 30.0
    """The consumer's ack_wait (how long a message of a dead process stays with it)."""
    may_fetch: Callable[[], bool] | None = None
    """Asked before each fetch: False pauses fetching (an executor whose hold on its partition
    is in doubt takes nothing more from it)."""
    keepalive_limit_s: float = KEEPALIVE_LIMIT_S
    """A handler running longer than this is no longer kept alive."""
    counters: WorkerCounters = field(default_factory=WorkerCounters)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _room: asyncio.Event = field(default_factory=asyncio.Event)
    _chains: dict[str, asyncio.Task[bool]] = field(default_factory=dict)
    _in_flight: set[asyncio.Task[bool]] = field(default_factory=set)
    _parked: dict[str, _Parked] = field(default_factory=dict)
    _held: dict[asyncio.Task[bool], tuple[Msg, float]] = field(default_factory=dict)
    """Each task's message (waiting behind its conversation's previous one, or its handler
    running) and since when: kept alive past ack_wait."""

    async def run(self) -> None:
        """Fetch and handle until `stop()`; messages in hand are finished and acked first."""
        sub = await self.js.pull_subscribe_bind(durable=self.hop.consumer, stream=self.hop.stream)
        fetcher = BatchFetcher(sub, self.batch)
        await self._park_conversations_held_elsewhere()
        keeping_alive = asyncio.create_task(self._keep_alive())
        try:
            while not self._stopping.is_set():
                room = self.max_in_flight - len(self._in_flight)
                if room <= 0:
                    self._room.clear()
                    await self._room.wait()
                    continue
                if self.may_fetch is not None and not self.may_fetch():
                    await asyncio.sleep(PAUSED_FETCH_S)
                    continue
                try:
                    msgs = await fetcher.next_batch(room)
                except nats.errors.Error as exc:  # reconnecting, closed, no responders…
                    log.warning("fetch failed; retrying", hop=self.hop.stage, error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    self._dispatch(msg)
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            keeping_alive.cancel()  # parked messages come back after ack_wait
            # a pull answered after the last fetch would sit in the inbox and hold up the
            # connection's drain; unacked, it is redelivered after ack_wait
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
            self._stopped.set()

    def stats(self) -> dict[str, int]:
        """The counters, for /healthz."""
        return {**dataclasses.asdict(self.counters), "in_flight": len(self._in_flight),
                "parked": sum(len(p.msgs) for p in self._parked.values())}

    async def stop(self) -> None:
        """Stop fetching and wait for the messages in flight (graceful drain)."""
        self._stopping.set()
        self._room.set()
        await self._stopped.wait()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _dispatch(self, msg: Msg) -> None:
        key = _conversation(msg)
        parked = self._parked.get(key)
        if parked is not None and msg.metadata.sequence.stream > parked.through:
            parked.msgs[msg.metadata.sequence.stream] = msg
            return
        previous = self._chains.get(key)
        task = asyncio.create_task(self._handle_after(previous, msg))
        self._chains[key] = task
        self._in_flight.add(task)
        self._held[task] = (msg, asyncio.get_running_loop().time())

        def done(finished: asyncio.Task[bool]) -> None:
            self._in_flight.discard(finished)
            self._held.pop(finished, None)
            if self._chains.get(key) is finished:
                del self._chains[key]
            self._room.set()

        task.add_done_callback(done)

    async def _handle_after(self, previous: asyncio.Task[bool] | None, msg: Msg) -> bool:
        if previous is not None:
            try:
                handled = await previous
            except Exception:
                handled = False
            if not handled:
                # keep the conversation's order: a later message waits for the failed one
                parked = self._parked.get(_conversation(msg))
                if parked is not None:
                    parked.msgs[msg.metadata.sequence.stream] = msg
                    self._held.pop(asyncio.current_task(), None)  # kept alive as parked now
                else:
                    await msg.nak(delay=self.retry_delays_s[0])
                return False
        # the limit counts from here: the wait behind the previous message was not this one's
        self._held[asyncio.current_task()] = (msg, asyncio.get_running_loop().time())
        handled = await self._handle_spanned(msg)
        parked = self._parked.get(_conversation(msg))
        if handled and parked is not None and parked.blocker == msg.metadata.sequence.stream:
            self._release(_conversation(msg))
        return handled

    async def _keep_alive(self) -> None:
        """One loop over what this worker holds. A handler may take longer than ack_wait (a
        provider's send pacing, a slow component, a turn waiting for another replica), later
        messages of its conversation wait behind it, parked ones wait for their turn: each is
        marked in progress every ack_wait/3, so it is neither redelivered to another replica
        nor charged a delivery attempt. Parked conversations are released when due."""
        loop = asyncio.get_running_loop()
        every = self.ack_wait_s / 3
        tick = every / math.ceil(every)  # at most 1 s, and `every` is a whole number of ticks
        marked = loop.time()
        while True:
            await asyncio.sleep(tick)
            if self._parked:
                try:
                    await self._release_due()
                except Exception as exc:  # the loop must outlive one bad round
                    log.error("releasing parked messages failed", hop=self.hop.stage,
                              error=repr(exc))
            now = loop.time()
            if now - marked < every - tick / 2:
                continue
            marked = now
            # all but the newest (marked by the next round, within every + tick < ack_wait);
            # one held past the limit is let go: ack_wait hands it on
            held = [msg for msg, since in self._held.values()
                    if now - self.keepalive_limit_s < since < now - tick]
            held += [msg for parked in self._parked.values() for msg in parked.msgs.values()]
            for msg in held:
                try:
                    await msg.in_progress()
                except (nats.errors.Error, TimeoutError) as exc:  # its ack_wait will tell
                    log.warning("could not mark a message in progress", hop=self.hop.stage,
                                subject=msg.subject, error=repr(exc))

    async def _handle_spanned(self, msg: Msg) -> bool:
        headers = msg.headers or {}
        with span(f"{self.hop.stage} process", kind=SpanKind.CONSUMER, headers=headers,
                  attributes={"messaging.system": "nats", "messaging.operation.type": "process",
                              "messaging.destination.name": msg.subject,
                              "messaging.consumer.group.name": self.hop.consumer,
                              "messaging.message.id": headers.get(h.MSG_ID),
                              "greentic.tenant": headers.get(h.TENANT),
                              "greentic.team": headers.get(h.TEAM),
                              "greentic.conversation": headers.get(h.CONVERSATION)}) as current:
            return await self._handle_traced(msg, current)

    async def _handle_traced(self, msg: Msg, current: Span) -> bool:
        stage = {"stage": self.hop.stage}
        try:
            await self.handler(msg)
        except DeadLetter as exc:
            mark_error(current, str(exc))
            await self._dead_letter(msg, str(exc))
            return True
        except Exception as exc:  # one bad message never kills the loop
            reason = f"{type(exc).__name__}: {exc}"
            mark_error(current, reason)
            ERRORS.add(1, {**stage, "kind": type(exc).__name__})
            delivered = msg.metadata.num_delivered
            if delivered >= self.max_deliver:
                await self._dead_letter(msg, f"gave up after {delivered} deliveries: {reason}")
                return True
            self.counters.retried += 1
            MESSAGES.add(1, {**stage, "outcome": "retried"})
            delay = self.retry_delays_s[min(delivered, len(self.retry_delays_s)) - 1]
            if isinstance(exc, RetryLater) and exc.delay_s is not None:
                delay = min(max(exc.delay_s, 0.0), 300.0)
            log.warning("handling failed; will retry", hop=self.hop.stage, subject=msg.subject,
                        delivered=delivered, delay_s=delay, error=reason)
            self._park_behind(msg, delay)
            await msg.nak(delay=delay)
            return False
        await self._ack(msg)
        self.counters.handled += 1
        MESSAGES.add(1, {**stage, "outcome": "handled"})
        return True

    async def _ack(self, msg: Msg) -> None:
        try:
            await msg.ack()
        except (nats.errors.Error, TimeoutError) as exc:
            # the effect is durable; a redelivery is recognised downstream (ids, sessions)
            log.warning("ack failed; the message may be delivered again", hop=self.hop.stage,
                        subject=msg.subject, error=repr(exc))

    def _park_behind(self, failed: Msg, delay_s: float) -> None:
        """Later messages of `failed`'s conversation wait until it is done (or the time a
        redelivery to another replica would take has passed), so none overtakes it."""
        seq = failed.metadata.sequence.stream
        until = asyncio.get_running_loop().time() + delay_s + self.ack_wait_s + 1.0
        parked = self._parked.setdefault(_conversation(failed), _Parked(through=seq, until=until))
        parked.through = max(parked.through, seq)
        parked.blocker = seq
        parked.until = max(parked.until, until)

    def _release(self, key: str) -> None:
        """Hand a conversation's parked messages to its chain, oldest first."""
        parked = self._parked.pop(key)
        for _, msg in sorted(parked.msgs.items()):
            self._dispatch(msg)

    async def _release_due(self) -> None:
        """Release conversations whose parked messages may go on: the time a redelivery
        would take has passed, or what another process held is done."""
        loop = asyncio.get_running_loop()
        ack_floor, others_hold = await self._held_elsewhere() if any(
            p.floor is not None for p in self._parked.values()) else (0, True)
        for key, parked in list(self._parked.items()):
            if loop.time() >= parked.until or (parked.floor is not None and (
                    not others_hold or ack_floor >= parked.floor)):
                self._release(key)

    async def _held_elsewhere(self) -> tuple[int, bool]:
        """The consumer's ack floor, and whether anyone but this worker holds messages."""
        try:
            info = await self.js.consumer_info(self.hop.stream, self.hop.consumer)
        except (nats.errors.Error, TimeoutError):
            return 0, True
        mine = len(self._in_flight) + sum(len(p.msgs) for p in self._parked.values())
        return (info.ack_floor.stream_seq if info.ack_floor else 0,
                info.num_ack_pending != mine)

    async def _park_conversations_held_elsewhere(self) -> None:
        """At start: messages fetched but not acked by another process (a crashed replica)
        come back only after ack_wait (or their retry delay), in no particular order, while
        new messages of their conversations arrive at once. Park every message of those
        conversations until the held ones are done elsewhere or must have come back, then
        run them in stream order."""
        try:
            info = await self.js.consumer_info(self.hop.stream, self.hop.consumer)
        except (nats.errors.Error, TimeoutError):
            return
        if not info.num_ack_pending or info.delivered is None or info.ack_floor is None:
            return
        last = info.delivered.stream_seq
        until = asyncio.get_running_loop().time() + self.ack_wait_s + max(
            self.retry_delays_s) + 1.0
        for seq in range(max(info.ack_floor.stream_seq + 1, last - HELD_SCAN_LIMIT + 1),
                         last + 1):
            try:
                held = await self.js.get_msg(self.hop.stream, seq)
            except nats.js.errors.NotFoundError:
                continue
            key = (held.headers or {}).get(h.CONVERSATION)
            if key:
                self._parked.setdefault(key, _Parked(through=0, until=until, floor=last))
        if self._parked:
            log.info("conversations held by another process wait for them", hop=self.hop.stage,
                     conversations=len(self._parked), through=last)

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
        await self._ack(msg)
        self.counters.dead_lettered += 1
        MESSAGES.add(1, {"stage": self.hop.stage, "outcome": "dead_lettered"})
        DEAD_LETTERS.add(1, {"stage": self.hop.stage})
        log.error("dead-lettered", hop=self.hop.stage, subject=msg.subject, reason=reason,
                  msg_id=original.get(h.MSG_ID))


def _conversation(msg: Msg) -> str:
    return (msg.headers or {}).get(h.CONVERSATION) or f"seq:{msg.reply}"

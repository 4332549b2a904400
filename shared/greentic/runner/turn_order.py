"""Per-conversation order across N executors: a routed message runs only once it is the oldest
message of its conversation still in GREENTIC_ROUTED (a work queue: acked messages leave it).

Every routed subject ends with the conversation's token, so a direct get of the first message
on that subject names the conversation's head. Others wait (the hop worker keeps their
delivery alive meanwhile, as for any running handler) until the executor that acks the head
announces it on
`greentic.executor.released.…`, or a slow poll notices. Within one executor only the oldest
waiting message of a conversation asks the stream and is woken by a release; the younger ones
wait behind it, so a backlog of n messages costs O(n) head lookups, not O(n²). A crashed
executor's head is redelivered after ack_wait and its successors keep waiting meanwhile; nothing
runs out of order.
"""

import asyncio
import time

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from greentic.bus.subjects import (
    RELEASED_PREFIX,
    parse_message_subject,
    released_subject,
    routed_of_released,
)
from greentic.errors import RetryLater, SubjectError

log = structlog.get_logger(__name__)


class TurnOrder:
    """Gate in front of each turn; `released()` after the ack opens it for the next message."""

    def __init__(self, nc: Client, js: JetStreamContext, stream: str, *, ack_wait_s: float,
                 give_up_s: float) -> None:
        self.nc = nc
        self.js = js
        self.stream = stream
        self.poll_s = min(1.0, ack_wait_s / 3)
        self.give_up_s = give_up_s
        """A head pending this long is treated as orphaned (its deliveries exhausted)."""
        self.stopping = False
        self.waits = 0
        self._waiting: dict[str, dict[int, asyncio.Event]] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{RELEASED_PREFIX}.>", cb=self._on_released)

    async def stop(self) -> None:
        self.stopping = True
        for events in self._waiting.values():
            for event in events.values():
                event.set()
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _on_released(self, notice: Msg) -> None:
        waiters = self._waiting.get(routed_of_released(notice.subject))
        if waiters:
            waiters[min(waiters)].set()

    async def head(self, subject: str) -> int | None:
        """Stream sequence of the oldest message still pending on `subject`."""
        try:
            found = await self.js.get_msg(self.stream, seq=1, subject=subject, next=True,
                                          direct=True)
        except NotFoundError:
            return None
        return found.seq

    async def wait_for_turn(self, msg: Msg) -> None:
        """Return when `msg` is its conversation's head; RetryLater if the service stops."""
        try:
            if parse_message_subject(msg.subject).conversation is None:
                return  # a subject from before conversation tokens: nothing to order by
        except SubjectError:
            return
        mine = msg.metadata.sequence.stream
        event = asyncio.Event()
        waiters = self._waiting.setdefault(msg.subject, {})
        waiters[mine] = event
        oldest_since: float | None = None  # when this became the oldest local waiter
        counted = False
        try:
            while True:
                event.clear()  # before reading the head, so no release can slip in between
                if min(waiters) == mine:  # the oldest local waiter speaks for the others
                    head = await self.head(msg.subject)
                    if head is None or head >= mine:
                        return
                    oldest_since = oldest_since or time.monotonic()
                    if time.monotonic() - oldest_since > self.give_up_s:
                        log.error("head of conversation pending too long; treating it as "
                                  "orphaned", subject=msg.subject, head=head, waiting_seq=mine)
                        return
                if self.stopping:
                    raise RetryLater("executor stopping while waiting for its turn")
                if not counted:
                    self.waits += 1
                    counted = True
                try:
                    await asyncio.wait_for(event.wait(), self.poll_s)
                except TimeoutError:
                    pass
        finally:
            del waiters[mine]
            if not waiters:
                self._waiting.pop(msg.subject, None)

    async def released(self, msg: Msg) -> None:
        """Announce that `msg` (now acked) no longer holds its conversation."""
        if msg.subject.count(".") == 7:
            await self.nc.publish(released_subject(msg.subject), b"")

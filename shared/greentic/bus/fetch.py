"""Pulling from a durable consumer with low latency at any load.

nats-py's `fetch(batch, timeout)` returns at once what is already waiting, but when nothing
is, its lingering request holds the first message that arrives until `batch` messages came
or `timeout` ran out — up to a second per hop at light load. So: when idle, block for one
message (returned the moment it arrives); when busy, take whatever is waiting in batches.
"""

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

BUSY_WAIT_S = 0.005
IDLE_WAIT_S = 1.0


class BatchFetcher:
    def __init__(self, sub: JetStreamContext.PullSubscription, batch: int) -> None:
        self.sub = sub
        self.batch = batch
        self.idle = True

    async def next_batch(self, limit: int | None = None) -> list[Msg]:
        """The next messages (possibly none, after about a second of quiet)."""
        try:
            if self.idle:
                msgs = await self.sub.fetch(1, timeout=IDLE_WAIT_S)
            else:
                msgs = await self.sub.fetch(min(self.batch, limit or self.batch),
                                            timeout=BUSY_WAIT_S)
        except (nats.errors.TimeoutError, TimeoutError):
            msgs = []  # nats-py raises either, depending on where the wait ended
        self.idle = not msgs
        return msgs

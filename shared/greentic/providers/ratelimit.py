"""Per-channel send pacing, so egress stays inside each provider's documented send limits.

Limits hold per egress process: with N egress replicas a channel may see up to N times the rate.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from greentic.errors import RetryLater

DEFAULT_RATES = {"slack": 1.0, "telegram": 25.0, "whatsapp": 60.0, "teams": 5.0}
"""Sends per second per channel when its config sets no `send_rate_per_s` (Slack allows about
one message per second per channel, Telegram 30 per second per bot, Teams a few per second
per conversation)."""


class SendPacer:
    """Spaces sends of one key at 1/rate seconds; a wait longer than `max_wait_s` is handed
    back to JetStream (RetryLater with that delay) instead of holding the message. Shorter
    waits hold it: the hop worker keeps a message alive while its handler runs."""

    def __init__(self, max_wait_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.sleep = sleep
        self._next: dict[str, float] = {}
        self.waited_s = 0.0

    async def wait_turn(self, key: str, rate: float) -> None:
        if rate <= 0:
            return
        now = self.clock()
        at = max(now, self._next.get(key, now))
        if at - now > self.max_wait_s:
            raise RetryLater(f"send rate {rate:g}/s of {key} reached", delay_s=at - now)
        self._next[key] = at + 1 / rate
        if at > now:
            self.waited_s += at - now
            await self.sleep(at - now)

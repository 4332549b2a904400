"""Fair use of the component threads: a free thread goes to the tenants waiting in turn, so
one tenant queueing many slow calls cannot make another wait behind all of them."""

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class FairSlots:
    """`size` slots; when several keys wait, a freed slot goes round-robin across keys
    (first come, first served within one key)."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiting: OrderedDict[Hashable, deque[asyncio.Future[None]]] = OrderedDict()

    @asynccontextmanager
    async def slot(self, key: Hashable) -> AsyncIterator[None]:
        await self._acquire(key)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, key: Hashable) -> None:
        if self.free and not self._waiting:
            self.free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                queue = self._waiting.get(key)
                if queue is not None and turn in queue:
                    queue.remove(turn)
                    if not queue:
                        del self._waiting[key]
            raise

    def _release(self) -> None:
        if not self._waiting:
            self.free += 1
            return
        key, queue = next(iter(self._waiting.items()))
        turn = queue.popleft()
        if queue:
            self._waiting.move_to_end(key)  # the next freed slot goes to another key first
        else:
            del self._waiting[key]
        turn.set_result(None)

"""Revisioned records: the storage contract that sessions and state are built on.

A record is bytes under a dotted path, with a revision that grows on every write (unique across
the whole store, so a key deleted and created again never repeats an old revision). Backends:
memory (here), JetStream KV (`kv.py`), Redis (`redis_store.py`).
"""

import itertools
import time
from collections.abc import Callable
from typing import Protocol

from greentic.errors import RevisionConflict


class Records(Protocol):
    async def get(self, path: str) -> tuple[bytes, int] | None:
        """The value and its revision, or None when absent (never written, deleted, expired)."""

    async def create(self, path: str, value: bytes) -> int:
        """Write only if absent; RevisionConflict otherwise. Returns the new revision."""

    async def update(self, path: str, value: bytes, revision: int) -> int:
        """Write only if the stored revision is `revision`; RevisionConflict otherwise."""

    async def put(self, path: str, value: bytes) -> int:
        """Write unconditionally."""

    async def delete(self, path: str) -> None:
        """Remove; absent is fine."""

    async def paths(self, pattern: str) -> list[str]:
        """Paths matching a NATS-style pattern (`*` one token, `>` the rest), sorted."""

    async def close(self) -> None:
        """Release connections the store opened itself."""


def matches(pattern: str, path: str) -> bool:
    """Does `path` match `pattern` (`*` matches one token, a final `>` one or more)?"""
    wanted, tokens = pattern.split("."), path.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


class MemoryRecords:
    """One process's records (tests, single-process runs); `ttl_s` expires idle values."""

    def __init__(self, ttl_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._values: dict[str, tuple[bytes, int, float]] = {}
        self._revisions = itertools.count(1)

    async def get(self, path: str) -> tuple[bytes, int] | None:
        found = self._values.get(path)
        if found is None:
            return None
        value, revision, expires = found
        if expires <= self._clock():
            del self._values[path]
            return None
        return value, revision

    def _write(self, path: str, value: bytes) -> int:
        revision = next(self._revisions)
        expires = self._clock() + self.ttl_s if self.ttl_s else float("inf")
        self._values[path] = (value, revision, expires)
        return revision

    async def create(self, path: str, value: bytes) -> int:
        if await self.get(path) is not None:
            raise RevisionConflict(path, 0)
        return self._write(path, value)

    async def update(self, path: str, value: bytes, revision: int) -> int:
        current = await self.get(path)
        if current is None or current[1] != revision:
            raise RevisionConflict(path, revision)
        return self._write(path, value)

    async def put(self, path: str, value: bytes) -> int:
        return self._write(path, value)

    async def delete(self, path: str) -> None:
        self._values.pop(path, None)

    async def paths(self, pattern: str) -> list[str]:
        live = [p for p in list(self._values) if await self.get(p) is not None]
        return sorted(p for p in live if matches(pattern, p))

    async def close(self) -> None:
        self._values.clear()

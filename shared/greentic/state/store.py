"""The state contract: every read and write names its tenant, scope and owner.

Backends (memory here; JetStream KV and Redis beside it) implement `StateStore`; no call can
reach another tenant's data because the TenantCtx is part of every key.
"""

from typing import Literal, NamedTuple, Protocol

from greentic.bus.subjects import token_key
from greentic.types.tenant import TenantCtx

StateScope = Literal["conversation", "user", "team", "tenant"]


class StateKey(NamedTuple):
    """One value: `name` in the `scope` of `owner` (a conversation id, a user id, …)."""

    ctx: TenantCtx
    scope: StateScope
    owner: str
    name: str

    def path(self) -> str:
        """`{env}.{tenant}.{team}.{scope}.{owner}.{name}` with every token validated."""
        return token_key(env=self.ctx.env, tenant=self.ctx.tenant, team=self.ctx.team,
                         scope=self.scope, owner=self.owner, name=self.name)


class StateStore(Protocol):
    async def get(self, key: StateKey) -> bytes | None: ...

    async def set(self, key: StateKey, value: bytes) -> None: ...

    async def delete(self, key: StateKey) -> None: ...


class MemoryStateStore:
    """Single-process state (tests, `greentic flow run`)."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    async def get(self, key: StateKey) -> bytes | None:
        return self._values.get(key.path())

    async def set(self, key: StateKey, value: bytes) -> None:
        self._values[key.path()] = value

    async def delete(self, key: StateKey) -> None:
        self._values.pop(key.path(), None)

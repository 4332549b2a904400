"""`StateStore` over the session layer's `Records`: the same backends and tenant checks."""

from greentic.session.records import Records
from greentic.state.store import StateKey, StateScope
from greentic.types.tenant import TenantCtx


class RecordStateStore:
    """State values as records keyed by `StateKey.path()` (tenant always part of the key)."""

    def __init__(self, records: Records) -> None:
        self.records = records

    async def get(self, key: StateKey) -> bytes | None:
        found = await self.records.get(key.path())
        return None if found is None else found[0]

    async def set(self, key: StateKey, value: bytes) -> None:
        await self.records.put(key.path(), value)

    async def delete(self, key: StateKey) -> None:
        await self.records.delete(key.path())

    async def list_keys(self, ctx: TenantCtx, scope: StateScope | None = None,
                        owner: str | None = None) -> list[StateKey]:
        """The keys of one tenant's team, narrowed by scope and owner."""
        prefix = StateKey(ctx, scope or "tenant", owner or "x", "x").path().split(".")[:3]
        pattern = ".".join([*prefix, scope or "*", owner or "*", "*"])
        found = []
        for path in await self.records.paths(pattern):
            env, tenant, team, found_scope, found_owner, name = path.split(".")
            found.append(StateKey(TenantCtx(env, tenant, team), found_scope,  # type: ignore[arg-type]
                                  found_owner, name))
        return found

    async def close(self) -> None:
        await self.records.close()

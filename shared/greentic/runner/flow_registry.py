"""Executors' view of the flow index: watched from KV, compiled once per version."""

import asyncio

import msgspec
import structlog
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from greentic.bus.watch import watch_bucket
from greentic.errors import FlowError
from greentic.flow.engine import FlowEngine
from greentic.flow.loader import load_flow
from greentic.flow.turn import FlowResolver, PreparedFlow
from greentic.pack.index import decode_flow_document, flow_key
from greentic.types.envelope import FlowRef
from greentic.types.tenant import TenantCtx

log = structlog.get_logger(__name__)


class FlowRegistry:
    """Prepared flows by KV key; a changed version replaces the old one atomically."""

    def __init__(self, engine: FlowEngine) -> None:
        self.engine = engine
        self._flows: dict[str, PreparedFlow] = {}
        self.loaded = asyncio.Event()
        """Set once the index's current content has been read."""

    def get(self, ctx: TenantCtx, ref: FlowRef) -> PreparedFlow | None:
        """The flow `ref` as published for `ctx`'s tenant (never another tenant's)."""
        return self._flows.get(flow_key(ctx.env, ctx.tenant, ref.pack, ref.flow))

    def resolver(self, ctx: TenantCtx, pack: str) -> FlowResolver:
        """Finds the other flows of `pack` as published for `ctx`'s tenant (flow.call/goto)."""
        return lambda flow_id: self._flows.get(flow_key(ctx.env, ctx.tenant, pack, flow_id))

    def __len__(self) -> int:
        return len(self._flows)

    async def follow(self, kv: KeyValue) -> None:
        """Apply index updates until cancelled."""
        async for entry in watch_bucket(kv, self.loaded):
            self._apply(entry.key, entry.operation, entry.value)

    def _apply(self, key: str, operation: str | None, value: bytes | None) -> None:
        if operation in (KV_DEL, KV_PURGE):
            self._flows.pop(key, None)
            log.info("flow removed", key=key)
            return
        try:
            document = decode_flow_document(value or b"")
            prepared = self.engine.prepare(load_flow(document.source, document.file,
                                                     bindings=document.bindings),
                                           document.pack, document.revision)
        except (msgspec.DecodeError, FlowError) as exc:
            log.error("flow in index is unusable; keeping the previous version", key=key,
                      error=str(exc))
            return
        self._flows[key] = prepared
        log.info("flow loaded", key=key, version=prepared.flow.version[:12])

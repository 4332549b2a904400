"""Executors' view of older pack revisions: loaded on demand from `greentic-pack-versions` for a
conversation that paused in a revision that is no longer current, then kept in a small LRU.

The current revision never comes through here (it is what FlowRegistry and ComponentRegistry
watch), so a conversation on the current revision costs no extra KV read.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from greentic.component.host import LoadedComponent
from greentic.errors import FlowError, GreenticError
from greentic.flow.engine import FlowEngine
from greentic.flow.loader import load_flow
from greentic.flow.turn import PreparedFlow
from greentic.hosting.components import ComponentRegistry
from greentic.pack.index import decode_pack_version, pack_version_key
from greentic.types.tenant import TenantCtx

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PinnedRevision:
    """One older revision of a tenant's pack: its flows prepared, its components loaded."""

    revision: str
    flows: dict[str, PreparedFlow]
    components: dict[str, LoadedComponent]


class PackVersions:
    """Older pack revisions by (env, tenant, pack, revision), least recently used dropped."""

    def __init__(self, engine: FlowEngine, components: ComponentRegistry, cached: int) -> None:
        self.engine = engine
        self.components = components
        self.cached = cached
        self._kv: KeyValue | None = None
        self._objects: Any = None
        self._revisions: OrderedDict[tuple[str, str, str, str], PinnedRevision] = OrderedDict()
        self.loads = 0
        self.gone = 0
        """Conversations whose paused revision was purged or unusable (they start over)."""
        self.last_load_ms = 0.0

    def attach(self, kv: KeyValue, objects: Any) -> None:
        """Where revisions (KV) and component bytes (object store) are read from."""
        self._kv, self._objects = kv, objects

    def pinned_components(self, ctx: TenantCtx, pack: str,
                          revision: str) -> dict[str, LoadedComponent] | None:
        """The components of a loaded older revision (a dict lookup: on every component call)."""
        found = self._revisions.get((ctx.env, ctx.tenant, pack, revision))
        return found.components if found is not None else None

    async def get(self, ctx: TenantCtx, pack: str, revision: str) -> PinnedRevision | None:
        """Revision `revision` of `ctx`'s tenant's `pack`, loaded once; None when it is no
        longer kept (or cannot be used), which is logged and counted."""
        cache_key = (ctx.env, ctx.tenant, pack, revision)
        found = self._revisions.get(cache_key)
        if found is not None:
            self._revisions.move_to_end(cache_key)
            return found
        assert self._kv is not None
        started = time.perf_counter()
        try:
            key = pack_version_key(ctx.env, ctx.tenant, pack, revision)
            document = decode_pack_version((await self._kv.get(key)).value or b"")
            flows = {flow.flow: self.engine.prepare(
                load_flow(flow.source, flow.file, bindings=flow.bindings), flow.pack,
                flow.revision)
                     for flow in document.flows}
            components = {c.manifest.id: await self.components.load(self._objects, c)
                          for c in document.components}
        except KeyNotFoundError:
            return self._gone(ctx, pack, revision, "purged")
        except (msgspec.DecodeError, msgspec.ValidationError, FlowError, GreenticError) as exc:
            return self._gone(ctx, pack, revision, str(exc))
        found = self._revisions[cache_key] = PinnedRevision(revision, flows, components)
        while len(self._revisions) > self.cached:
            self._revisions.popitem(last=False)
        self.loads += 1
        self.last_load_ms = (time.perf_counter() - started) * 1000
        log.info("older pack revision loaded", tenant=ctx.tenant, pack=pack, revision=revision,
                 flows=len(flows), components=len(components), ms=round(self.last_load_ms, 1))
        return found

    def _gone(self, ctx: TenantCtx, pack: str, revision: str, why: str) -> None:
        self.gone += 1
        log.warning("paused pack revision is no longer available; the conversation continues "
                    "on the current one", tenant=ctx.tenant, pack=pack, revision=revision,
                    why=why)
        return None

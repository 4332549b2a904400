"""The components a service runs, as pack-loader publishes them: watched from the KV index,
bytes fetched from the object store by digest (sha256 re-checked), compiled through the disk
cache, swapped atomically. Executors call node/MCP components from it; ingress and egress their
channels' provider components."""

import asyncio
import hashlib
import time
from typing import Any

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from greentic.bus.topology import COMPONENT_INDEX_BUCKET, COMPONENTS_OBJECT_STORE
from greentic.bus.watch import watch_bucket
from greentic.component.engine import ComponentEngine
from greentic.component.host import ComponentHost, LoadedComponent
from greentic.config.settings import Settings
from greentic.errors import GreenticError
from greentic.pack.index import ComponentDocument, component_key, decode_component_document
from greentic.secrets import secrets_from_settings
from greentic.state import MemoryStateStore
from greentic.types.tenant import TenantCtx

log = structlog.get_logger(__name__)


class ComponentRegistry:
    """Loaded components by index key (`{env}.{tenant}.{pack}.{component}`): a tenant sees only
    the components of packs the bundle gives it."""

    def __init__(self, host: ComponentHost, worlds: frozenset[str] | None = None) -> None:
        self.host = host
        self.worlds = worlds
        """Load only components of these worlds (ingress/egress: providers); None = all."""
        self._components: dict[str, LoadedComponent] = {}
        self._by_content: dict[tuple[str, bytes], LoadedComponent] = {}
        self._pending: set[str] = set()
        self._refused: dict[str, str] = {}  # key → why its current version was refused
        self.loaded = asyncio.Event()
        """Set once the index's current content has been loaded."""
        self.refusals = 0

    def get(self, ctx: TenantCtx, pack: str, component: str) -> LoadedComponent | None:
        """Component `component` of `pack` as published for `ctx`'s tenant."""
        try:
            return self._components.get(component_key(ctx.env, ctx.tenant, pack, component))
        except GreenticError:  # not a valid token: cannot exist
            return None

    def refusal(self, ctx: TenantCtx, pack: str, component: str) -> str | None:
        """Why the published version of a component was refused, if it was."""
        try:
            return self._refused.get(component_key(ctx.env, ctx.tenant, pack, component))
        except GreenticError:
            return None

    def is_pending(self, ctx: TenantCtx, pack: str, component: str) -> bool:
        """True while a published component is still being fetched or compiled."""
        try:
            return component_key(ctx.env, ctx.tenant, pack, component) in self._pending
        except GreenticError:
            return False

    def __len__(self) -> int:
        return len(self._components)

    async def follow(self, kv: KeyValue, objects: Any) -> None:
        """Apply index updates until cancelled."""
        async for entry in watch_bucket(kv, self.loaded):
            await self._apply(objects, entry.key, entry.operation, entry.value)

    async def _apply(self, objects: Any, key: str, operation: str | None,
                     value: bytes | None) -> None:
        if operation in (KV_DEL, KV_PURGE):
            self._components.pop(key, None)
            self._refused.pop(key, None)
            log.info("component removed", key=key)
            return
        try:
            document = decode_component_document(value or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.refusals += 1
            self._refused[key] = str(exc)
            log.error("component document unreadable; keeping the previous version", key=key,
                      error=str(exc))
            return
        if self.worlds is not None and document.manifest.world not in self.worlds:
            return
        self._pending.add(key)
        started = time.monotonic()
        try:
            loaded = await self.load(objects, document)
        except (msgspec.DecodeError, msgspec.ValidationError, GreenticError) as exc:
            self.refusals += 1
            self._refused[key] = str(exc)
            log.error("component refused; keeping the previous version", key=key,
                      error=str(exc))
            return
        except Exception as exc:  # object store unreachable, …: keep serving what we have
            self.refusals += 1
            log.error("component could not be fetched; keeping the previous version", key=key,
                      error=f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._pending.discard(key)
        self._components[key] = loaded  # one assignment: callers see old or new, never half
        self._refused.pop(key, None)
        log.info("component loaded", key=key, world=loaded.world, digest=loaded.digest[:12],
                 ms=round((time.monotonic() - started) * 1000))

    async def load(self, objects: Any, document: ComponentDocument) -> LoadedComponent:
        """The component a document describes: bytes fetched by digest (sha256 re-checked),
        compiled through the cache; the same bytes and manifest are loaded once."""
        manifest_bytes = msgspec.json.encode(document.manifest)
        loaded = self._by_content.get((document.digest, manifest_bytes))
        if loaded is None:
            data = (await objects.get(document.digest)).data or b""
            if hashlib.sha256(data).hexdigest() != document.digest:
                raise GreenticError(f"bytes of {document.digest[:12]} do not match their "
                                    "digest")
            loaded = await self.host.load_async(document.manifest, data, document.digest)
            self._by_content[(document.digest, manifest_bytes)] = loaded
        return loaded


async def follow_provider_components(settings: Settings, js: JetStreamContext,
                                     ) -> tuple[ComponentRegistry, asyncio.Task[None]]:
    """Ingress's and egress's registry of messaging-provider components (no state store:
    providers keep none), following the index until the task is cancelled; returns once the
    index's current content is loaded."""
    registry = ComponentRegistry(ComponentHost(
        ComponentEngine.shared(settings.component_cache_dir, settings.wasm_fuel),
        MemoryStateStore(), secrets_from_settings(settings), threads=settings.wasm_threads),
        worlds=frozenset({"provider"}))
    task = asyncio.create_task(registry.follow(await js.key_value(COMPONENT_INDEX_BUCKET),
                                               await js.object_store(COMPONENTS_OBJECT_STORE)))
    await registry.loaded.wait()
    return registry, task

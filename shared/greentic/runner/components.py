"""Executors' view of components: watched from the KV index, bytes fetched from the object store
by digest (sha256 re-checked), compiled through the disk cache, swapped atomically; and the
flow operations that call them (`component.exec`, `mcp`)."""

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from greentic.bus.watch import watch_bucket
from greentic.component.host import ComponentHost, LoadedComponent
from greentic.errors import ComponentError, GreenticError, RetryLater
from greentic.flow.model import Node
from greentic.flow.turn import NodeOutcome, Operation, Turn
from greentic.mcp import call_tool
from greentic.pack.index import ComponentDocument, component_key, decode_component_document
from greentic.types.tenant import TenantCtx

log = structlog.get_logger(__name__)


class ComponentRegistry:
    """Loaded components by index key (`{env}.{tenant}.{pack}.{component}`): a tenant sees only
    the components of packs the bundle gives it."""

    def __init__(self, host: ComponentHost) -> None:
        self.host = host
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
        self._pending.add(key)
        started = time.monotonic()
        try:
            loaded = await self.load(objects, decode_component_document(value or b""))
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


def _error(code: str, message: str) -> NodeOutcome:
    return NodeOutcome({"error": {"code": code, "message": message},
                        "text": f"error: {message}"}, status="error")


def _output(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    return {"text": value if isinstance(value, str) else json.dumps(value), "value": value}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


PinnedComponents = Callable[[TenantCtx, str, str], dict[str, LoadedComponent] | None]
"""(tenant, pack, revision) → the components of that older pack revision, when one is loaded."""


def component_operations(registry: ComponentRegistry,
                         pinned: PinnedComponents | None = None) -> dict[str, Operation]:
    """`component.exec` and `mcp` for the flow engine, calling components of the flow's pack
    (of the pack revision the turn runs on, when `pinned` has it loaded)."""

    def resolve(args: Any, turn: Turn, node: Node) -> LoadedComponent | NodeOutcome:
        if not isinstance(args, dict) or not isinstance(args.get("component"), str):
            return _error("bad-input", f"node {node.id!r}: `component` must name a component")
        flow = turn.envelope.flow
        pack = flow.pack if flow else ""
        revision = pinned(turn.envelope.ctx, pack, turn.revision) \
            if pinned is not None and turn.revision else None
        if revision is not None:
            return revision.get(args["component"]) or _error(
                "not-found", f"component {args['component']!r} is not in revision "
                f"{turn.revision} of pack {pack!r}")
        loaded = registry.get(turn.envelope.ctx, pack, args["component"])
        if loaded is None and registry.is_pending(turn.envelope.ctx, pack, args["component"]):
            raise RetryLater(f"component {args['component']!r} is still loading")
        if loaded is None and (reason := registry.refusal(turn.envelope.ctx, pack,
                                                          args["component"])):
            return _error("refused", reason)
        if loaded is None:
            return _error("not-found", f"component {args['component']!r} is not available "
                          f"to tenant {turn.envelope.ctx.tenant!r} in pack {pack!r}")
        return loaded

    async def component_exec(node: Node, args: Any, turn: Turn) -> NodeOutcome:
        loaded = resolve(args, turn, node)
        if isinstance(loaded, NodeOutcome):
            return loaded
        envelope = turn.envelope
        try:
            if loaded.world == "seed":
                content = args.get("input", envelope.text)
                text = await registry.host.execute(
                    loaded, envelope.ctx, envelope.conversation, id=envelope.id,
                    content=_as_text(content), sender=envelope.sender or "",
                    timestamp=envelope.created_ms or 0)
                return NodeOutcome({"text": text})
            if loaded.world == "node":
                operation = args.get("operation")
                if not operation:
                    operation = loaded.manifest.default_operation or (
                        loaded.manifest.operations[0] if len(loaded.manifest.operations) == 1
                        else None)
                if not isinstance(operation, str) or not operation:
                    return _error("bad-input", f"node {node.id!r}: `operation` is required for "
                                  f"node-world component {loaded.id!r}")
                payload = {k: v for k, v in args.items() if k not in ("component", "operation")}
                output = await registry.host.invoke(
                    loaded, envelope.ctx, envelope.conversation, operation, payload,
                    flow_id=envelope.flow.flow if envelope.flow else "", step_id=node.id,
                    by_name=node.op != "component.exec")  # `<component-id>: {…}` gives all
                return NodeOutcome(_output(output))
            return _error("bad-input", f"component {loaded.id!r} is an MCP tool server: call "
                          "it with the `mcp` operation")
        except ComponentError as exc:
            return _error(exc.code, exc.message)

    async def mcp(node: Node, args: Any, turn: Turn) -> NodeOutcome:
        loaded = resolve(args, turn, node)
        if isinstance(loaded, NodeOutcome):
            return loaded
        if loaded.world != "mcp":
            return _error("bad-input", f"component {loaded.id!r} exports no MCP tools")
        tool = args.get("tool")
        if not isinstance(tool, str) or not tool:
            return _error("bad-input", f"node {node.id!r}: `tool` is required")
        try:
            output = await call_tool(registry.host, loaded, turn.envelope.ctx,
                                     turn.envelope.conversation, tool, args.get("arguments") or {})
        except ComponentError as exc:
            return _error(exc.code, exc.message)
        return NodeOutcome(_output(output))

    return {"component.exec": component_exec, "mcp": mcp}

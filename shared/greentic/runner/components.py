"""The flow operations that call components (`component.exec`, `mcp`, a component called by
name), on the executor's component registry (`greentic.hosting.components`)."""

import json
from collections.abc import Callable
from typing import Any

import structlog

from greentic.component.host import LoadedComponent
from greentic.errors import ComponentError, RetryLater
from greentic.flow.model import Node
from greentic.flow.turn import NodeOutcome, Operation, Turn
from greentic.hosting.components import ComponentRegistry
from greentic.mcp import call_tool
from greentic.types.tenant import TenantCtx

log = structlog.get_logger(__name__)


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

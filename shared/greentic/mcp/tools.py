"""Calling an MCP-style tool component (world `greentic-py:mcp/tool-server`): JSON in and out,
strings on the wire (cheap through wasmtime-py, unlike `list<u8>`)."""

import asyncio
import json
from typing import Any

from greentic.component.build import NoSecrets, default_cache_dir
from greentic.component.engine import ComponentEngine
from greentic.component.host import ComponentHost, Live, LoadedComponent
from greentic.errors import ComponentError
from greentic.interfaces.values import field
from greentic.state.store import MemoryStateStore
from greentic.types.component import ComponentCapabilities, ComponentManifest
from greentic.types.tenant import TenantCtx


async def call_tool(host: ComponentHost, loaded: LoadedComponent, tenant: TenantCtx,
                    conversation: str, tool: str, arguments: Any) -> Any:
    """`call-tool(name, arguments-json)`; returns the decoded JSON result."""
    arguments_json = json.dumps(arguments if arguments is not None else {})

    def body(live: Live) -> Any:
        return live.funcs["call-tool"](live.store, tool, arguments_json)

    result = await host.run(loaded, tenant, conversation, body)
    host.check_output(loaded, str(result.payload))
    if result.tag != "ok":
        raise ComponentError("guest", str(result.payload))
    try:
        return json.loads(result.payload)
    except ValueError:
        return result.payload


async def list_tools(host: ComponentHost, loaded: LoadedComponent,
                     tenant: TenantCtx) -> list[dict[str, Any]]:
    """The tools a component offers: name, description, JSON schema of the arguments."""

    def body(live: Live) -> Any:
        return live.funcs["list-tools"](live.store)

    tools = await host.run(loaded, tenant, "list-tools", body)
    return [{"name": t.name, "description": t.description,
             "input_schema": json.loads(field(t, "input-schema") or "{}")} for t in tools]


def describe_tools(data: bytes, name: str = "component") -> list[dict[str, Any]]:
    """The tools of an MCP component's bytes (for `greentic component describe`)."""
    host = ComponentHost(ComponentEngine.shared(default_cache_dir()), MemoryStateStore(),
                         NoSecrets(), threads=1)
    try:
        loaded = host.load(ComponentManifest(id=name, world="mcp", capabilities=
                                             ComponentCapabilities(host=["log"])), data)
        return asyncio.run(list_tools(host, loaded, TenantCtx("dev", "describe", "describe")))
    finally:
        host.close()

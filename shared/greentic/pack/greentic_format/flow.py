"""A `.ygtc` flow compiled into Greentic's flow IR (greentic-types `Flow`), as packc does.

Follows greentic-flow 0.4.43 as vendored in greentic-pack (`crates/vendor/greentic-flow/src/
lib.rs` `compile_flow`/`compile_routing`, `loader.rs`, `model.rs`) and packc's steps after it
(`crates/packc/src/build.rs` `build_flows`: `normalize_legacy_component_exec_ids`,
`apply_summary_component_ids`). A node's operation is the *last* key of the node besides
`routing`/`telemetry` (greentic-flow's loop keeps the last one); schema-v2 nodes become
`component.exec` with that key as operation, which packc then turns into the component id when
it contains `.` or `:`. JSON objects come out sorted by key, as serde_json's map is a BTreeMap.
"""

import re
from typing import Any

import yaml

from greentic.errors import PackError
from greentic.flow.loader import Yaml12Loader
from greentic.pack.greentic_format.component import IDENTIFIER

FLOW_TYPES = {"messaging": "messaging", "event": "event", "events": "event",
              "component-config": "component_config", "job": "job", "http": "http"}
RESERVED = ("routing", "telemetry", "output", "retry", "timeout", "when", "annotations", "meta",
            "operation")
BUILTINS = ("questions", "template")


class _Yaml12CoreLoader(Yaml12Loader):
    """YAML 1.2's core schema, as serde_yaml reads: no timestamps, no sexagesimal or
    underscored numbers, `0o`/`0x`/`0b` integers."""


_Yaml12CoreLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in (
        "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in Yaml12Loader.yaml_implicit_resolvers.items()}
_Yaml12CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|0b[01]+)$"),
    list("-+0123456789"))
_Yaml12CoreLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.0123456789"))


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    for prefix, base in (("0o", 8), ("0x", 16), ("0b", 2)):
        if text.startswith(prefix):
            return int(text[2:], base)
    return int(text, 10)


_Yaml12CoreLoader.add_constructor("tag:yaml.org,2002:int", _int)


def _sorted_json(value: Any) -> Any:
    """A YAML value as serde_json holds it: objects sorted by key, keys text."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("a mapping key is not text")
        return {key: _sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(item) for item in value]
    return value


def _identifier(value: Any, kind: str, where: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise PackError(f"{kind} id {value!r}: ASCII letters, digits, '.', '-' and '_' only",
                        entry=where)
    return value


def _routing(raw: Any, nodes: dict[str, Any], node_id: str, where: str) -> Any:
    """greentic-flow `compile_routing`, in `Routing`'s serde shape."""
    def target(to: str) -> dict[str, Any]:
        if to not in nodes:
            raise PackError(f"node {node_id!r} routes to {to!r}, which is no node", entry=where)
        return {"node_id": to}

    if raw is None:
        routes: list[dict[str, Any]] = []
    elif isinstance(raw, str):
        if raw not in ("out", "reply"):
            raise PackError(f"node {node_id!r}: invalid routing shorthand {raw!r}", entry=where)
        routes = [{"out": True}] if raw == "out" else [{"reply": True}]
    elif isinstance(raw, list) and all(isinstance(route, dict) for route in raw):
        routes = raw
    else:
        raise PackError(f"node {node_id!r}: routing is a list of routes, 'out' or 'reply'",
                        entry=where)
    if len(routes) == 1:
        route = routes[0]
        if route.get("reply"):
            return "reply"
        if route.get("to") is not None:
            if route["to"] == "out" or route.get("out"):
                return "end"
            return {"next": target(route["to"])}
        if route.get("out"):
            return "end"
        return {"custom": _sorted_json(raw)}
    if not routes:
        return "end"
    on_status: dict[str, str] = {}
    default = None
    for route in routes:
        if route.get("reply") or route.get("out") or route.get("to") is None:
            return {"custom": _sorted_json(raw)}
        to = target(route["to"])["node_id"]
        if route.get("status") is not None:
            on_status[route["status"]] = to
        else:
            default = to
    if not on_status and default is None:
        return {"custom": _sorted_json(raw)}
    branch: dict[str, Any] = {"on_status": dict(sorted(on_status.items()))}
    if default is not None:
        branch["default"] = default
    return {"branch": branch}


def _node(node_id: str, body: dict[str, Any], doc: dict[str, Any], legacy: bool,
          resolved: dict[str, str], where: str) -> dict[str, Any]:
    raw = {key: value for key, value in body.items() if key not in ("routing", "telemetry")}
    ops = [key for key in raw if key not in RESERVED]
    if len(ops) != 1 and not legacy and not ("component.exec" in raw and len(ops) == 2):
        raise PackError(f"node {node_id!r} must name exactly one component or operation "
                        f"(it names {ops or 'none'})", entry=where)
    if not raw:
        raise PackError(f"node {node_id!r} names no operation", entry=where)
    operation, payload = list(raw.items())[-1]
    if operation in BUILTINS or legacy:
        component, op = operation, None
    else:
        component, op = "component.exec", operation
    if component == "component.exec" and op is not None and ("." in op or ":" in op):
        component, op = op, None  # packc normalize_legacy_component_exec_ids
    if component == "component.exec" and op is None:
        raise PackError(f"node {node_id!r}: a legacy component.exec node needs packc's node "
                        "normalisation, which this writer does not do", entry=where)
    named = resolved.get(node_id)
    if named is not None and component not in ("", "component.exec") and named != component:
        raise PackError(f"node {node_id!r} calls {component!r}, but its resolved component is "
                        f"{named!r}", entry=where)
    if component == "component.exec":
        if named is None:
            raise PackError(f"node {node_id!r} calls component.exec: give its component id "
                            "(the flow's resolve summary)", entry=where)
        component = named
    telemetry_doc = body.get("telemetry") or {}
    telemetry: dict[str, Any] = {}
    if telemetry_doc.get("span_name") is not None:
        telemetry["span_name"] = telemetry_doc["span_name"]
    telemetry["attributes"] = dict(sorted((telemetry_doc.get("attributes") or {}).items()))
    if telemetry_doc.get("sampling") is not None:
        telemetry["sampling"] = telemetry_doc["sampling"]
    ref: dict[str, Any] = {"id": _identifier(component, "component", where)}
    if op is not None:
        ref["operation"] = op
    return {"id": node_id, "component": ref,
            "input": {"mapping": _sorted_json({} if payload is None else payload)},
            "output": {"mapping": _sorted_json(raw.get("output", {}))},
            "routing": _routing(body.get("routing", []), doc["nodes"], node_id, where),
            "telemetry": telemetry}


def compile_flow(source: str, *, file: str = "flow.ygtc",
                 resolved: dict[str, str] | None = None) -> dict[str, Any]:
    """The `Flow` (serde shape, `nodes` keyed by id) of a `.ygtc` source; `resolved` maps node
    ids to component ids, as packc's `<flow>.resolve.summary.json` does."""
    try:
        doc = yaml.load(source, Loader=_Yaml12CoreLoader)  # a SafeLoader
        _sorted_json(doc)  # refuses what serde_json cannot hold (non-text keys) up front
    except (yaml.YAMLError, ValueError) as exc:
        raise PackError(f"not a readable flow: {exc}", entry=file) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), dict):
        raise PackError("a flow is a mapping with `nodes`", entry=file)
    if "type" not in doc:
        raise PackError("missing required property 'type'", entry=file)
    kind = FLOW_TYPES.get(doc["type"])
    if kind is None:
        raise PackError(f"unknown flow type {doc['type']!r}", entry=file)
    legacy = (doc.get("schema_version") or 2) < 2
    nodes = {}
    for node_id, body in doc["nodes"].items():
        _identifier(node_id, "node", file)
        if not isinstance(body, dict):
            raise PackError(f"node {node_id!r} is not a mapping", entry=file)
        nodes[node_id] = _node(node_id, body, doc, legacy, resolved or {}, file)
    entrypoints = dict(doc.get("entrypoints") or {})
    start = doc.get("start") or ("in" if "in" in nodes else next(iter(nodes), None))
    if start is not None:
        entrypoints.setdefault("default", start)
    metadata: dict[str, Any] = {}
    for name in ("title", "description"):
        if doc.get(name) is not None:
            metadata[name] = doc[name]
    metadata["tags"] = sorted(set(doc.get("tags") or []))
    metadata["extra"] = _sorted_json(doc.get("parameters", {}))
    return {"schema_version": "flow-v1", "id": _identifier(doc.get("id"), "flow", file),
            "kind": kind, "entrypoints": _sorted_json(entrypoints), "nodes": nodes,
            "metadata": metadata}

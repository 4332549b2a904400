"""`.ygtc` YAML → Flow IR, with errors that name the file and the node."""

import hashlib
from typing import Any

import yaml

from greentic.errors import FlowError
from greentic.flow.model import Flow, Node, Route

NODE_KEYS = frozenset({"routing", "output", "telemetry"})


def _routes(file: str, node_id: str, routing: Any) -> tuple[Route, ...]:
    if routing is None or routing == "out":
        return ()
    if routing == "reply":
        return (Route(reply=True),)
    if isinstance(routing, str):
        return (Route(to=routing),)
    if not isinstance(routing, list):
        raise FlowError("routing must be 'out', 'reply', a node id or a list of routes",
                        file=file, node=node_id)
    routes = []
    for index, item in enumerate(routing):
        if not isinstance(item, dict):
            raise FlowError(f"routing[{index}] must be a mapping", file=file, node=node_id)
        target = item.get("to", item.get("next"))
        if target is not None and not isinstance(target, str):
            raise FlowError(f"routing[{index}].to must be a node id", file=file, node=node_id)
        status = item.get("status")
        routes.append(Route(to=target, status=None if status is None else str(status),
                            out=bool(item.get("out", False)), reply=bool(item.get("reply", False))))
    return tuple(routes)


def _node(file: str, node_id: str, body: Any) -> Node:
    if not isinstance(body, dict):
        raise FlowError("a node must be a mapping", file=file, node=node_id)
    ops = [key for key in body if key not in NODE_KEYS]
    if len(ops) != 1:
        raise FlowError(f"a node needs exactly one operation key, found {len(ops)}: {ops}",
                        file=file, node=node_id)
    return Node(id=node_id, op=ops[0], args=body[ops[0]],
                routes=_routes(file, node_id, body.get("routing")))


def load_flow(source: str, file: str = "<flow>") -> Flow:
    """Parse and check a flow; any problem raises FlowError naming `file` and the node."""
    try:
        doc = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise FlowError(f"not valid YAML: {exc}", file=file) from None
    if not isinstance(doc, dict):
        raise FlowError("a flow must be a mapping with 'id' and 'nodes'", file=file)
    nodes_doc = doc.get("nodes")
    if not isinstance(nodes_doc, dict) or not nodes_doc:
        raise FlowError("'nodes' must be a non-empty mapping", file=file)
    nodes = {str(node_id): _node(file, str(node_id), body) for node_id, body in nodes_doc.items()}
    start = doc.get("start") or next(iter(nodes))
    if start not in nodes:
        raise FlowError(f"start node {start!r} does not exist", file=file)
    for node in nodes.values():
        for route in node.routes:
            if route.to is not None and route.to not in nodes:
                raise FlowError(f"routes to unknown node {route.to!r}", file=file, node=node.id)
    flow_id = doc.get("id")
    if not isinstance(flow_id, str) or not flow_id:
        raise FlowError("'id' must be a non-empty string", file=file)
    return Flow(id=flow_id, type=str(doc.get("type", "messaging")), start=str(start), nodes=nodes,
                version=hashlib.sha256(source.encode()).hexdigest(), file=file)

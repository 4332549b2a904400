"""`.ygtc` YAML → Flow IR. Every problem is a diagnostic with `file:line:col` and the node id.

What greentic-flow's loader accepts is accepted (docs/flows.md, compatibility notes), plus a
few looser forms seen in the wild (`next` for `to`, a single route mapping or a bare node id
as routing). Components called by name are resolved here: against the pack's components
when the flow is checked inside its pack (an unresolved name is then an error), else left to
the bindings a pack recorded.
"""

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import yaml

from greentic.errors import FlowError
from greentic.flow.catalog import FLOW_REFERENCE_OPERATIONS, KNOWN_OPERATIONS
from greentic.flow.condition import compile_condition
from greentic.flow.model import Flow, Node, Position, Route
from greentic.flow.shapes import flow_reference, is_expression, question_list
from greentic.flow.templating import compile_value

# the node keys that are not its operation (greentic-flow's loader: the node-shape check)
NODE_META_KEYS = frozenset({"routing", "telemetry", "output", "retry", "timeout", "when",
                            "annotations", "meta", "in_map", "out_map", "err_map", "operation"})
ROUTE_KEYS = frozenset({"to", "next", "status", "condition", "reply", "out", "on_message"})
TOP_KEYS = frozenset({"id", "type", "schema_version", "title", "description", "tags", "start",
                      "parameters", "entrypoints", "meta", "nodes", "slot_schema"})
NODE_ID = re.compile(r"[A-Za-z_][\w-]*")
MAX_SOURCE_BYTES = 1024 * 1024
MAX_YAML_NODES = 100_000


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where `yes`/`no`/`on`/`off` are booleans; Greentic (serde_yaml)
    reads YAML 1.2, where they are strings. Flows must mean the same here as there."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                   re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


class Diagnostic(msgspec.Struct, frozen=True):
    """One finding of the validator."""

    file: str
    line: int
    col: int
    message: str
    node: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: "
        if self.node:
            where += f"node '{self.node}': "
        return where + ("warning: " if self.severity == "warning" else "") + self.message


class FlowValidationError(FlowError):
    """A flow failed validation; `diagnostics` holds every error (first one in the message)."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        first = diagnostics[0]
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(f"{first}{more}")
        self.diagnostics = diagnostics
        self.file, self.line, self.col, self.node = first.file, first.line, first.col, first.node


def _pos(node: yaml.Node | None) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1) if node else \
        Position(1, 1)


def _count(node: yaml.Node, budget: list[int]) -> None:
    """Guard against alias bombs: count nodes as if aliases were expanded."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_YAML_NODES} YAML values (alias bomb?)")
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _count(key, budget)
            _count(value, budget)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _count(item, budget)


def _entries(node: yaml.Node | None) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value) if isinstance(node, yaml.MappingNode) else []


class _Checker:
    def __init__(self, file: str, pack_flows: Iterable[str] | None, bindings: dict[str, str],
                 components: Mapping[str, Iterable[str]] | None, strict_bindings: bool) -> None:
        self.file = file
        self.pack_flows = set(pack_flows) if pack_flows is not None else None
        self.bindings = bindings
        self.components = {c: set(ops) for c, ops in components.items()} \
            if components is not None else None
        self.strict_bindings = strict_bindings or components is not None
        self.calls: dict[str, str] = {}  # node id → component it calls by name
        self.diagnostics: list[Diagnostic] = []

    def error(self, at: Position, message: str, node: str = "", severity: str = "error") -> None:
        self.diagnostics.append(Diagnostic(self.file, at.line, at.col, message, node, severity))

    def warn(self, at: Position, message: str, node: str = "") -> None:
        self.error(at, message, node, "warning")

    # --- routing -------------------------------------------------------------------
    def routes(self, node_id: str, routing: Any, at: Position,
               items: list[yaml.Node]) -> tuple[Route, ...]:
        if routing is None or routing == "out":
            return ()
        if routing == "reply":
            return (Route(reply=True),)
        if isinstance(routing, str):
            return (Route(to=routing),)  # a bare node id (seen in the wild)
        if isinstance(routing, dict):
            routing, items = [routing], [None] * 1  # a single route mapping
        if not isinstance(routing, list):
            self.error(at, "routing must be 'out', 'reply', a node id or a list of routes",
                       node_id)
            return ()
        routes = []
        for index, item in enumerate(routing):
            where = _pos(items[index]) if index < len(items) and items[index] else at
            if isinstance(item, str):
                routes.append(Route(to=item))
                continue
            if not isinstance(item, dict):
                self.error(where, f"routing[{index}] must be a mapping like {{to: <node>}}",
                           node_id)
                continue
            route = self.route(node_id, index, item, where)
            if route is not None:
                routes.append(route)
        return tuple(routes)

    def route(self, node_id: str, index: int, item: dict, at: Position) -> Route | None:
        unknown = sorted(str(k) for k in item if k not in ROUTE_KEYS)
        if unknown:
            self.error(at, f"routing[{index}] has unknown key(s) {unknown}; allowed: "
                       f"{sorted(ROUTE_KEYS)}", node_id)
            return None
        if "to" in item and "next" in item:
            self.error(at, f"routing[{index}] has both 'to' and 'next'", node_id)
            return None
        target = item.get("to", item.get("next"))
        if target is not None and not isinstance(target, str):
            self.error(at, f"routing[{index}].to must be a node id", node_id)
            return None
        for flag in ("reply", "out", "on_message"):
            if flag in item and not isinstance(item[flag], bool):
                self.error(at, f"routing[{index}].{flag} must be true or false", node_id)
                return None
        condition = item.get("condition")
        if condition is not None:
            if not isinstance(condition, str):
                self.error(at, f"routing[{index}].condition must be a string", node_id)
                return None
            try:
                compile_condition(condition)
            except ValueError as exc:
                self.error(at, f"routing[{index}].condition {condition!r}: {exc}", node_id)
                return None
        if target is None and not item.get("out") and not item.get("reply"):
            self.error(at, f"routing[{index}] needs 'to', 'out: true' or 'reply: true'", node_id)
            return None
        status = item.get("status")
        return Route(to=target, status=None if status is None else str(status),
                     condition=condition, out=bool(item.get("out")),
                     reply=bool(item.get("reply")), on_message=bool(item.get("on_message")))

    # --- nodes ---------------------------------------------------------------------
    def node(self, node_id: Any, body: Any, key: yaml.Node, value: yaml.Node) -> Node | None:
        at = _pos(key)
        if not isinstance(node_id, str) or not NODE_ID.fullmatch(node_id):
            self.error(at, f"node id {node_id!r} must match [A-Za-z_][A-Za-z0-9_-]*")
            return None
        if not isinstance(body, dict):
            self.error(at, "a node must be a mapping with one operation key", node_id)
            return None
        keys = {k.value: (k, v) for k, v in _entries(value) if isinstance(k, yaml.ScalarNode)}
        ops = [k for k in body if k not in NODE_META_KEYS]
        if len(ops) != 1:
            self.error(at, f"a node needs exactly one operation key, found {len(ops)}: "
                       f"{sorted(map(str, ops))}", node_id)
            return None
        op = ops[0]
        if not isinstance(op, str):
            self.error(at, f"operation key {op!r} must be a string", node_id)
            return None
        op_at = _pos(keys[op][0]) if op in keys else at
        operation = self.operation(node_id, op, body[op], body.get("operation"), op_at)
        routing_node = keys.get("routing", (None, None))[1]
        items = list(routing_node.value) if isinstance(routing_node, yaml.SequenceNode) else []
        routes = self.routes(node_id, body.get("routing"), _pos(routing_node) if routing_node
                             else at, items)
        timeout_ms, retry_max, backoff = self.limits(node_id, body, at)
        return Node(id=node_id, op=op, args=body[op], routes=routes, position=at,
                    timeout_ms=timeout_ms, retry_max=retry_max, retry_backoff_ms=backoff,
                    operation=operation)

    def limits(self, node_id: str, body: dict, at: Position) -> tuple[int | None, int, int]:
        timeout_ms = None
        timeout = body.get("timeout")
        if timeout is not None:
            ms = timeout.get("ms", timeout.get("timeout_ms")) if isinstance(timeout, dict) \
                else None
            if isinstance(timeout, dict) and "seconds" in timeout and ms is None:
                ms = timeout["seconds"] * 1000 if isinstance(timeout["seconds"], int | float) \
                    else None
            if not isinstance(ms, int | float) or isinstance(ms, bool) or ms <= 0:
                self.error(at, "timeout must be {ms: <positive number>} or {seconds: …}",
                           node_id)
            else:
                timeout_ms = int(ms)
        retry = body.get("retry")
        retry_max, backoff = 0, 200
        if retry is not None:
            attempts = retry.get("max_attempts", 1) if isinstance(retry, dict) else None
            delay = retry.get("backoff_ms", 200) if isinstance(retry, dict) else None
            if not (isinstance(attempts, int) and 1 <= attempts <= 10 and
                    isinstance(delay, int) and 0 <= delay <= 60_000):
                self.error(at, "retry must be {max_attempts: 1..10, backoff_ms: 0..60000}",
                           node_id)
            else:
                retry_max, backoff = attempts - 1, delay
        return timeout_ms, retry_max, backoff

    def operation(self, node_id: str, op: str, args: Any, sibling: Any,
                  at: Position) -> str | None:
        """Check one operation; returns the operation of a component it calls by name."""
        try:
            compile_value(args)
        except ValueError as exc:
            self.error(at, str(exc), node_id)
        if op in FLOW_REFERENCE_OPERATIONS:
            target = flow_reference(args)
            if not isinstance(target, str) or not target:
                self.error(at, f"{op} needs the id of a flow: {{flow: <id>}}", node_id)
            elif self.pack_flows is not None and target not in self.pack_flows and \
                    not is_expression(target):
                self.error(at, f"{op} refers to flow {target!r}, which is not in the pack "
                           f"(flows: {sorted(self.pack_flows)})", node_id)
        elif op == "questions":
            questions = question_list(args)
            if not isinstance(questions, list) or not questions or not all(
                    isinstance(q, dict) and isinstance(q.get("id"), str) and q.get("prompt")
                    for q in questions):
                self.error(at, "questions needs a list 'questions' of {id, prompt, "
                           "answer_type?}", node_id)
        elif op not in KNOWN_OPERATIONS:
            return self.component_call(node_id, op, args, sibling, at)
        return None

    def component_call(self, node_id: str, op: str, args: Any, sibling: Any,
                       at: Position) -> str | None:
        """Greentic's rules (packc's build_flows, the runner's node kinds): a dotted operation
        key is the id of the component called (its `operation:` says what to invoke); a bare
        one (`handle_message`) is the operation (unless the node says `operation:`) of the
        component the sidecar binds, else of the one component of the pack offering it."""
        bound = self.bindings.get(node_id)
        named = args.get("operation") if isinstance(args, dict) else None
        if "." in op or ":" in op:
            if bound and bound != op and self.components is not None and \
                    bound in self.components:
                self.error(at, f"calls component {op!r}, but its sidecar binds {bound!r}",
                           node_id)
                return None
            component, operation = op, sibling if isinstance(sibling, str) else named
        else:
            offering = sorted(c for c, ops in (self.components or {}).items() if op in ops)
            if not bound and len(offering) > 1:
                self.error(at, f"operation {op!r} is offered by several components "
                           f"{offering}; a .resolve.json sidecar must say which one", node_id)
                return None
            component = bound or (offering[0] if offering else None)
            operation = sibling if isinstance(sibling, str) else op
        if component is None:
            message = f"operation {op!r} is not built in, and " + (
                "no component of the pack offers it" if self.components is not None else
                "nothing binds it to a component (a pack or a .resolve.json sidecar must)")
            if self.strict_bindings:
                self.error(at, message, node_id)
            else:
                self.warn(at, message, node_id)
            return None
        if self.components is not None and component not in self.components:
            self.error(at, f"calls component {component!r}, which is not in the pack "
                       f"(components: {sorted(self.components)})", node_id)
            return None
        self.calls[node_id] = component
        return operation if isinstance(operation, str) else None

    # --- graph ---------------------------------------------------------------------
    def reachability(self, start: str, nodes: dict[str, Node], entrypoints: Any) -> None:
        roots = [start]
        if isinstance(entrypoints, dict):
            for value in entrypoints.values():
                target = value.get("node", value.get("start")) if isinstance(value, dict) \
                    else value
                if isinstance(target, str) and target in nodes:
                    roots.append(target)
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            current = stack.pop()
            if current in seen or current not in nodes:
                continue
            seen.add(current)
            stack.extend(r.to for r in nodes[current].routes if r.to)
        for node in nodes.values():
            for route in node.routes:
                if route.to is not None and route.to not in nodes:
                    self.error(node.position, f"routes to unknown node {route.to!r}", node.id)
            if node.id not in seen:  # greentic-flow loads such a flow too: a warning
                self.warn(node.position, f"node is unreachable from start node {start!r}",
                          node.id)


def _compose(source: str, checker: _Checker) -> tuple[Any, yaml.Node | None]:
    try:
        loader = Yaml12Loader(source)
    except yaml.reader.ReaderError as exc:
        line = source.count("\n", 0, exc.position) + 1
        col = exc.position - source.rfind("\n", 0, exc.position)
        checker.error(Position(line, col), f"not valid YAML: {exc.reason}")
        return None, None
    try:
        root = loader.get_single_node()
        if root is not None:
            _count(root, [MAX_YAML_NODES])
        return (loader.construct_document(root) if root is not None else None), root
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        checker.error(Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1),
                      f"not valid YAML: {exc.problem or exc}")
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        checker.error(Position(1, 1), f"not valid YAML: {exc}")
    finally:
        loader.dispose()
    return None, None


def check_flow(source: str, file: str = "<flow>", *, pack_flows: Iterable[str] | None = None,
               bindings: dict[str, str] | None = None,
               components: Mapping[str, Iterable[str]] | None = None,
               strict_bindings: bool = False) -> tuple[Flow | None, list[Diagnostic]]:
    """Validate a flow; returns the IR (None when there are errors) and every diagnostic.

    `bindings` (node id → component id) come from a sidecar or a pack; `components` (id →
    operations) are the pack's, when the flow is checked inside its pack: then every component
    named or bound must be one of them."""
    checker = _Checker(file, pack_flows, bindings or {}, components, strict_bindings)
    flow = _check(source, checker, bindings or {})
    checker.diagnostics.sort(key=lambda d: (d.line, d.col))
    return flow, checker.diagnostics


def _check(source: str, checker: _Checker, bindings: dict[str, str]) -> Flow | None:
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        checker.error(Position(1, 1), f"flow file is larger than {MAX_SOURCE_BYTES} bytes")
        return None
    doc, root = _compose(source, checker)
    if checker.diagnostics:
        return None
    if not isinstance(doc, dict):
        checker.error(_pos(root), "a flow must be a mapping with 'id' and 'nodes'")
        return None
    top = {k.value: (k, v) for k, v in _entries(root) if isinstance(k, yaml.ScalarNode)}

    def at(key: str) -> Position:
        return _pos(top[key][0]) if key in top else Position(1, 1)

    for key in doc:
        if key not in TOP_KEYS and not (isinstance(key, str) and key.startswith("x-")):
            checker.warn(at(str(key)), f"unknown top-level key {key!r} (kept, ignored)")
    flow_id = doc.get("id")
    if not isinstance(flow_id, str) or not flow_id:
        checker.error(at("id"), "'id' must be a non-empty string")
    if "type" not in doc:
        checker.warn(Position(1, 1), "no 'type'; assuming 'messaging'")
    version = doc.get("schema_version", 2)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        checker.error(at("schema_version"), "'schema_version' must be a positive integer")
    nodes_doc = doc.get("nodes")
    if nodes_doc is None or nodes_doc == {}:  # greentic-flow loads it: a flow that does nothing
        checker.warn(at("nodes"), "no nodes: the flow ends at once, without a reply")
        nodes_doc = {}
    if not isinstance(nodes_doc, dict):
        checker.error(at("nodes"), "'nodes' must be a mapping of node id → node")
        return None
    seen_ids: set[Any] = set()
    for key, _value in _entries(top["nodes"][1] if "nodes" in top else None):
        if getattr(key, "value", None) in seen_ids:
            checker.error(_pos(key), f"duplicate node id {key.value!r}", str(key.value))
        seen_ids.add(getattr(key, "value", None))
    if checker.diagnostics and any(d.severity == "error" for d in checker.diagnostics):
        return None
    nodes: dict[str, Node] = {}
    for (key, value), (node_id, body) in zip(_entries(top["nodes"][1] if "nodes" in top
                                                      else None), nodes_doc.items(),
                                             strict=True):
        node = checker.node(node_id, body, key, value)
        if node is not None:
            nodes[node.id] = node
    start = doc.get("start")
    if start is None:
        start = next(iter(nodes_doc), "")
    if nodes_doc and (not isinstance(start, str) or start not in nodes_doc):
        checker.error(at("start"), f"start node {start!r} does not exist")
    elif nodes:
        checker.reachability(start, nodes, doc.get("entrypoints"))
    for node_id in bindings:
        if node_id not in nodes_doc:
            checker.warn(Position(1, 1), f"the sidecar binds node {node_id!r}, which the "
                         "flow does not have")
    if any(d.severity == "error" for d in checker.diagnostics):
        return None
    flow = Flow(id=flow_id, type=str(doc.get("type", "messaging")), start=start, nodes=nodes,
                version=hashlib.sha256(source.encode()).hexdigest(), file=checker.file,
                title=str(doc.get("title") or ""), description=str(doc.get("description") or ""),
                schema_version=version,
                parameters=doc["parameters"] if isinstance(doc.get("parameters"), dict) else {},
                entrypoints=doc["entrypoints"] if isinstance(doc.get("entrypoints"), dict)
                else {}, bindings=checker.calls)
    return flow


def load_flow(source: str, file: str = "<flow>", **options: Any) -> Flow:
    """Validate and return the IR; raises FlowValidationError listing every error."""
    flow, diagnostics = check_flow(source, file, **options)
    if flow is None:
        raise FlowValidationError([d for d in diagnostics if d.severity == "error"])
    return flow

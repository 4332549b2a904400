"""Runs one turn of a flow: node after node until the flow ends, replies or waits for input.

The engine is pure: it gets the inbound message and, for a conversation that paused, the
snapshot to resume from; it returns replies and, when the flow waits, the snapshot to store.
Persistence is the executor's job. Operations are looked up in a registry, so later work
(component.exec, state.*, mcp) adds entries without touching the routing logic.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from greentic.errors import FlowError, SubjectError
from greentic.flow.condition import compile_condition
from greentic.flow.model import Flow, Node
from greentic.flow.questions import ask_questions
from greentic.flow.replies import replies_from
from greentic.flow.shapes import flow_reference
from greentic.flow.templating import compile_value
from greentic.flow.turn import (
    FlowResolver,
    FlowSnapshot,
    NodeError,
    NodeOutcome,
    Operation,
    PreparedFlow,
    Turn,
    TurnResult,
)
from greentic.telemetry.metrics import FLOW_DURATION
from greentic.telemetry.tracing import span
from greentic.types.envelope import Envelope

MAX_STEPS_PER_TURN = 100
MAX_FLOW_CALL_DEPTH = 8
DEFAULT_NODE_TIMEOUT_MS = 30_000


async def _handlebars(_node: Node, rendered: Any, _turn: Turn) -> NodeOutcome:
    return NodeOutcome(rendered if isinstance(rendered, dict) else {"text": rendered})


async def _emit_response(_node: Node, rendered: Any, turn: Turn) -> NodeOutcome:
    output = rendered if isinstance(rendered, dict) else {"text": rendered}
    turn.replies.extend(replies_from(output))
    return NodeOutcome(output)


async def _session_wait(node: Node, rendered: Any, turn: Turn) -> NodeOutcome:
    """First visit: send the prompt and pause here. On the next message: continue, routing on
    that message (its input is what the conditions see)."""
    if turn.resumed_node == node.id:
        return NodeOutcome(dict(turn.context["input"]))
    output = rendered if isinstance(rendered, dict) else {"text": rendered or ""}
    return NodeOutcome(output, wait=True, resume_at=node.id)


async def _flow_goto(_node: Node, rendered: Any, _turn: Turn) -> NodeOutcome:
    target = flow_reference(rendered)
    return NodeOutcome({"flow": target}, goto=str(target))


def _find(resolve: FlowResolver | None, flow_id: str) -> PreparedFlow | None:
    """The flow `flow_id` of the running flow's pack, or None: also for an id that cannot
    name one (`acme-pack/x`, `a.b`, `>`), which the resolver refuses as a key token."""
    try:
        return resolve(flow_id) if resolve is not None else None
    except SubjectError:
        return None


BUILTIN_OPERATIONS: dict[str, Operation] = {
    "templating.handlebars": _handlebars,
    "emit.response": _emit_response,
    "session.wait": _session_wait,
    "flow.goto": _flow_goto,
    "questions": ask_questions,
}


def input_context(envelope: Envelope) -> dict[str, Any]:
    """What templates see of the incoming message as `in.input` and `input`."""
    text = envelope.text or ""
    try:
        number: float | None = float(text.strip().replace(",", "."))
    except ValueError:
        number = None
    if number is not None and number != number:  # NaN
        number = None
    return {"text": text, "normalized": " ".join(text.lower().split()), "number": number,
            "is_number": number is not None, "value": envelope.value, "sender": envelope.sender,
            "conversation": envelope.conversation, "channel": envelope.channel,
            "provider": envelope.provider, "id": envelope.id}


@dataclass
class _Stop:
    kind: str  # "end" | "reply" | "wait"
    snapshot: FlowSnapshot | None = None


@dataclass
class FlowEngine:
    """Prepares flows and runs their turns."""

    operations: dict[str, Operation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.operations = {**BUILTIN_OPERATIONS, "flow.call": self._flow_call,
                           **self.operations}

    def prepare(self, flow: Flow, pack: str = "", revision: str = "") -> PreparedFlow:
        """Compile a flow's templates and conditions; FlowError names the node at fault."""
        renderers, conditions = {}, {}
        for node in flow.nodes.values():
            try:
                renderers[node.id] = compile_value(node.args)
                for index, route in enumerate(node.routes):
                    if route.condition is not None:
                        conditions[(node.id, index)] = compile_condition(route.condition)
            except ValueError as exc:
                raise FlowError(str(exc), file=flow.file, node=node.id) from None
        return PreparedFlow(flow, renderers, conditions, pack, revision)

    async def run_turn(self, prepared: PreparedFlow, envelope: Envelope,
                       resume: FlowSnapshot | None = None,
                       resolve: FlowResolver | None = None, *,
                       session: dict[str, Any] | None = None) -> TurnResult:
        """Run from the start node (or where `resume` paused) until the flow ends, replies
        or waits. `resolve` finds other flows of the same pack (flow.call, flow.goto);
        `session` is what templates see as `{{session.…}}` (e.g. `turn`)."""
        node_id = prepared.flow.start or None  # a flow without nodes ends at once
        state: dict[str, Any] = {}
        if resume is not None:
            if resume.flow != prepared.flow.id:
                prepared = self._resolve(resolve, resume.flow, prepared.flow)
            if resume.node in prepared.flow.nodes:
                node_id, state = resume.node, dict(resume.state)
        message = input_context(envelope)
        turn = Turn(envelope, {"in": {"input": message}, "input": message, "node": {},
                               "prev": {}, "state": state, "flow": prepared.flow.parameters,
                               "session": dict(session or {})},
                    [], resumed_node=node_id if resume is not None else None, resolve=resolve,
                    revision=prepared.revision)
        started = time.perf_counter()
        with span(f"flow {prepared.flow.id}", attributes={
                "greentic.flow": prepared.flow.id, "greentic.pack": prepared.pack,
                "greentic.flow.version": prepared.flow.version[:12],
                "greentic.tenant": envelope.ctx.tenant, "greentic.resumed_at": turn.resumed_node}):
            stop = await self._run(prepared, turn, node_id)
        FLOW_DURATION.record(time.perf_counter() - started,
                             {"flow": prepared.flow.id, "tenant": envelope.ctx.tenant})
        return TurnResult(turn.replies, turn.steps, stop.snapshot)

    def _resolve(self, resolve: FlowResolver | None, flow_id: str, caller: Flow) -> PreparedFlow:
        found = _find(resolve, flow_id)
        if found is None:
            raise FlowError(f"flow {flow_id!r} is not available in this pack", file=caller.file)
        return found

    async def _run(self, prepared: PreparedFlow, turn: Turn, node_id: str | None) -> _Stop:
        last_output: Any = None
        while node_id is not None:
            flow = prepared.flow
            if len(turn.steps) >= MAX_STEPS_PER_TURN:
                raise FlowError(f"more than {MAX_STEPS_PER_TURN} steps in one turn (a loop?)",
                                file=flow.file, node=node_id)
            node = flow.nodes[node_id]
            turn.steps.append(node_id if turn.depth == 0 else f"{flow.id}/{node_id}")
            outcome = await self._execute(prepared, node, turn)
            turn.context["node"][node_id] = last_output = outcome.output
            turn.context["prev"] = outcome.output
            resumed_here = turn.resumed_node == node_id
            turn.resumed_node = None
            if outcome.goto is not None:
                prepared = self._resolve(turn.resolve, outcome.goto, flow)
                node_id = prepared.flow.start
                continue
            next_id, stop = self._route(prepared, node, outcome, turn, resumed_here)
            if stop == "reply":
                turn.replies.extend(replies_from(outcome.output))
                return _Stop("reply")
            if outcome.wait:
                turn.replies.extend(replies_from(outcome.output))
                resume_at = outcome.resume_at or next_id
                if resume_at is None:
                    return _Stop("end")
                if turn.depth > 0:
                    raise FlowError("session.wait inside a flow.call sub-flow is not "
                                    "supported; use flow.goto to continue in another flow",
                                    file=flow.file, node=node_id)
                return _Stop("wait", FlowSnapshot(pack=prepared.pack, flow=flow.id,
                                                  version=flow.version, node=resume_at,
                                                  state=turn.state,
                                                  revision=prepared.revision))
            node_id = next_id
        if turn.depth == 0 and not turn.replies and prepared.flow.type == "messaging":
            turn.replies.extend(replies_from(last_output))  # it ends answering with its output
        turn.context["prev"] = last_output
        return _Stop("end")

    def _route(self, prepared: PreparedFlow, node: Node, outcome: NodeOutcome, turn: Turn,
               resumed_here: bool) -> tuple[str | None, str | None]:
        """(next node id or None, "reply" when the turn ends with a reply)."""
        for index, route in enumerate(node.routes):
            if route.status is not None and route.status != outcome.status:
                continue
            if route.on_message and not (resumed_here and turn.envelope.value is None):
                continue
            condition = prepared.conditions.get((node.id, index))
            if condition is not None and not condition(turn.context):
                continue
            if route.reply:
                return None, "reply"
            return (None if route.out else route.to), None
        if outcome.status == "error":
            error = outcome.output.get("error", {}) if isinstance(outcome.output, dict) else {}
            raise FlowError(f"{error.get('message', 'failed')} (no route for status 'error')",
                            file=prepared.flow.file, node=node.id)
        return None, None

    async def _execute(self, prepared: PreparedFlow, node: Node, turn: Turn) -> NodeOutcome:
        operation = self.operations.get(node.op)
        component = None if operation else prepared.flow.bindings.get(node.id)
        if component:
            operation = self.operations.get("component.exec")
        if operation is None:
            raise FlowError(f"operation {node.op!r} is not supported by this runner",
                            file=prepared.flow.file, node=node.id)
        rendered = prepared.renderers[node.id](turn.context)
        if component:  # a component called by name: the node's fields are its input
            rendered = {**(rendered if isinstance(rendered, dict) else {"input": rendered}),
                        "component": component, "operation": node.operation}
        timeout_s = (node.timeout_ms or DEFAULT_NODE_TIMEOUT_MS) / 1000
        attempt = 0
        while True:
            try:
                with span(f"node {node.id}", attributes={"greentic.node": node.id,
                                                         "greentic.operation": node.op,
                                                         "greentic.attempt": attempt + 1}):
                    return await asyncio.wait_for(operation(node, rendered, turn), timeout_s)
            except TimeoutError:
                error = NodeError("timeout", f"timeout after {timeout_s * 1000:.0f} ms",
                                  retryable=True)
            except NodeError as exc:
                error = exc
            if not error.retryable or attempt >= node.retry_max:
                return NodeOutcome({"error": {"code": error.code, "message": str(error)}},
                                   status="error")
            delay_ms = error.backoff_ms if error.backoff_ms is not None else \
                node.retry_backoff_ms * 2 ** attempt
            attempt += 1
            await asyncio.sleep(delay_ms / 1000)

    async def _flow_call(self, node: Node, rendered: Any, turn: Turn) -> NodeOutcome:
        if turn.depth >= MAX_FLOW_CALL_DEPTH:
            raise NodeError("depth", f"flow.call nested deeper than {MAX_FLOW_CALL_DEPTH}")
        target = flow_reference(rendered)
        found = _find(turn.resolve, str(target))
        if found is None:
            raise NodeError("not_found", f"flow {target!r} is not available in this pack")
        message = dict(turn.context["input"])
        if isinstance(rendered, dict) and isinstance(rendered.get("input"), dict):
            message.update(rendered["input"])
        child = Turn(turn.envelope, {"in": {"input": message}, "input": message, "node": {},
                                     "prev": {}, "state": {}, "flow": found.flow.parameters},
                     turn.replies, steps=turn.steps, resolve=turn.resolve, depth=turn.depth + 1,
                     revision=turn.revision)
        await self._run(found, child, found.flow.start)
        return NodeOutcome(child.context["prev"])

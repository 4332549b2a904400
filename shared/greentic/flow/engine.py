"""Runs one turn of a flow: node after node until the flow ends, replies or waits for input.

The engine is pure: it gets the inbound message and, for a conversation that paused, the
snapshot to resume from; it returns replies and, when the flow waits, the snapshot to store.
Persistence is the executor's job. Operations are looked up in a registry, so later work
(component.exec, state.*, mcp) adds entries without touching the routing logic.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from greentic.errors import FlowError
from greentic.flow.model import Flow, Node
from greentic.flow.templating import compile_value
from greentic.types.envelope import Button, Envelope

MAX_STEPS_PER_TURN = 100


class Reply(msgspec.Struct, omit_defaults=True):
    """A message the flow sends back to the user."""

    text: str = ""
    buttons: list[Button] = []


class FlowSnapshot(msgspec.Struct, kw_only=True):
    """A paused flow: the next message of the conversation resumes at `node`."""

    pack: str
    flow: str
    version: str
    """sha256 of the flow source the conversation paused in."""
    node: str
    state: dict[str, Any] = {}
    """What the flow keeps between turns (`{{state.…}}` in templates)."""


class TurnResult(msgspec.Struct):
    """What one turn produced: replies in order, the node ids it ran, and where it paused."""

    replies: list[Reply]
    steps: list[str]
    paused: FlowSnapshot | None = None


@dataclass(frozen=True)
class NodeOutcome:
    """An operation's result: a status for routing, an output for later templates, and
    `wait=True` to pause the flow after routing until the conversation's next message."""

    output: Any
    status: str = "ok"
    wait: bool = False


@dataclass
class Turn:
    """What operations see of the turn in progress."""

    envelope: Envelope
    """The inbound message (TenantCtx, conversation, sender…)."""
    context: dict[str, Any]
    """The template context: in, input, prev, node, state, flow, session."""

    @property
    def state(self) -> dict[str, Any]:
        return self.context["state"]


Render = Callable[[dict[str, Any]], Any]
Operation = Callable[[Node, Any, Turn], Awaitable[NodeOutcome]]
"""(node, its arguments rendered for this turn, the turn) → outcome."""


async def _handlebars(_node: Node, rendered: Any, _turn: Turn) -> NodeOutcome:
    return NodeOutcome(rendered if isinstance(rendered, dict) else {"text": rendered})


BUILTIN_OPERATIONS: dict[str, Operation] = {"templating.handlebars": _handlebars}


@dataclass(frozen=True)
class PreparedFlow:
    """A flow with every template compiled (done once per flow version, never per message)."""

    flow: Flow
    renderers: dict[str, Render]
    pack: str = ""


def _reply_from(output: Any) -> Reply | None:
    if isinstance(output, str):
        return Reply(text=output)
    if not isinstance(output, dict) or not (output.get("text") or output.get("buttons")):
        return None
    buttons = [Button(title=str(b), value=str(b)) if not isinstance(b, dict)
               else Button(title=str(b.get("title", b.get("value", ""))),
                           value=str(b.get("value", b.get("title", ""))))
               for b in output.get("buttons") or []]
    return Reply(text=str(output.get("text") or ""), buttons=buttons)


def input_context(envelope: Envelope) -> dict[str, Any]:
    """What templates see of the incoming message as `in.input` and `input`."""
    return {"text": envelope.text, "value": envelope.value, "sender": envelope.sender,
            "conversation": envelope.conversation, "channel": envelope.channel,
            "provider": envelope.provider, "id": envelope.id}


@dataclass
class FlowEngine:
    """Prepares flows and runs their turns."""

    operations: dict[str, Operation] = field(default_factory=lambda: dict(BUILTIN_OPERATIONS))

    def prepare(self, flow: Flow, pack: str = "") -> PreparedFlow:
        """Compile a flow's templates; raises FlowError naming the node with a bad template."""
        renderers = {}
        for node in flow.nodes.values():
            try:
                renderers[node.id] = compile_value(node.args)
            except ValueError as exc:
                raise FlowError(str(exc), file=flow.file, node=node.id) from None
        return PreparedFlow(flow, renderers, pack)

    async def run_turn(self, prepared: PreparedFlow, envelope: Envelope,
                       resume: FlowSnapshot | None = None, *,
                       session: dict[str, Any] | None = None) -> TurnResult:
        """Run from the start node (or where `resume` paused) until the flow ends, replies or
        waits. `session` is what templates see as `{{session.…}}` (e.g. `turn`)."""
        flow = prepared.flow
        message = input_context(envelope)
        outputs: dict[str, Any] = {}
        turn = Turn(envelope, {"in": {"input": message}, "input": message, "node": outputs,
                               "prev": {}, "state": dict(resume.state) if resume else {},
                               "flow": {}, "session": dict(session or {})})
        replies: list[Reply] = []
        steps: list[str] = []
        node_id: str | None = resume.node if resume else flow.start
        if node_id not in flow.nodes:
            raise FlowError(f"cannot resume at node {node_id!r}: not in this flow version",
                            file=flow.file)
        last_output: Any = None
        while node_id is not None:
            if len(steps) >= MAX_STEPS_PER_TURN:
                raise FlowError(f"more than {MAX_STEPS_PER_TURN} steps in one turn (a loop?)",
                                file=flow.file, node=node_id)
            node = flow.nodes[node_id]
            steps.append(node_id)
            operation = self.operations.get(node.op)
            if operation is None:
                raise FlowError(f"operation {node.op!r} is not supported by this runner",
                                file=flow.file, node=node_id)
            outcome = await operation(node, prepared.renderers[node_id](turn.context), turn)
            outputs[node_id] = last_output = outcome.output
            turn.context["prev"] = outcome.output
            node_id = None
            for route in node.routes:
                if route.status is not None and route.status != outcome.status:
                    continue
                if route.reply:
                    if (reply := _reply_from(outcome.output)) is not None:
                        replies.append(reply)
                    return TurnResult(replies, steps)
                if route.to is not None:
                    node_id = route.to
                break
            if outcome.wait:
                if (reply := _reply_from(outcome.output)) is not None:
                    replies.append(reply)
                if node_id is None:
                    break
                return TurnResult(replies, steps, FlowSnapshot(
                    pack=prepared.pack, flow=flow.id, version=flow.version, node=node_id,
                    state=turn.state))
        if not replies and flow.type == "messaging" and (reply := _reply_from(last_output)):
            replies.append(reply)  # a messaging flow that ends answers with its last output
        return TurnResult(replies, steps)

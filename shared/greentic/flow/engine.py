"""Runs one turn of a flow: node after node until the flow ends or replies.

Operations are looked up in a registry so that later work (component.exec, session.wait,
state.*) adds entries without touching the routing logic.
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


class TurnResult(msgspec.Struct):
    """What one turn produced: replies in order and the node ids it ran."""

    replies: list[Reply]
    steps: list[str]


@dataclass(frozen=True)
class NodeOutcome:
    """An operation's result: a status for routing and an output for later templates."""

    output: Any
    status: str = "ok"


Render = Callable[[dict[str, Any]], Any]
Operation = Callable[[Node, Render, dict[str, Any]], Awaitable[NodeOutcome]]


async def _handlebars(_node: Node, render: Render, context: dict[str, Any]) -> NodeOutcome:
    rendered = render(context)
    return NodeOutcome(rendered if isinstance(rendered, dict) else {"text": rendered})


@dataclass(frozen=True)
class PreparedFlow:
    """A flow with every template compiled (done once per flow version, never per message)."""

    flow: Flow
    renderers: dict[str, Render]


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

    operations: dict[str, Operation] = field(
        default_factory=lambda: {"templating.handlebars": _handlebars})

    def prepare(self, flow: Flow) -> PreparedFlow:
        """Compile a flow's templates; raises FlowError naming the node with a bad template."""
        renderers = {}
        for node in flow.nodes.values():
            try:
                renderers[node.id] = compile_value(node.args)
            except ValueError as exc:
                raise FlowError(str(exc), file=flow.file, node=node.id) from None
        return PreparedFlow(flow, renderers)

    async def run_turn(self, prepared: PreparedFlow, envelope: Envelope) -> TurnResult:
        """Run from the start node until the flow ends or replies."""
        flow = prepared.flow
        message = input_context(envelope)
        outputs: dict[str, Any] = {}
        context: dict[str, Any] = {"in": {"input": message}, "input": message, "node": outputs,
                                   "prev": {}, "state": {}, "flow": {}}
        replies: list[Reply] = []
        steps: list[str] = []
        node_id: str | None = flow.start
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
            outcome = await operation(node, prepared.renderers[node_id], context)
            outputs[node_id] = last_output = outcome.output
            context["prev"] = outcome.output
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
        if not replies and flow.type == "messaging" and (reply := _reply_from(last_output)):
            replies.append(reply)  # a messaging flow that ends answers with its last output
        return TurnResult(replies, steps)

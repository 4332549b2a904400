"""The vocabulary shared by the engine and its operations: prepared flows, turns, outcomes,
replies, snapshots."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from greentic.errors import GreenticError
from greentic.flow.condition import Condition
from greentic.flow.model import Flow, Node
from greentic.types.envelope import Button, Envelope

Render = Callable[[dict[str, Any]], Any]
"""A compiled template: the template context → the rendered value."""


@dataclass(frozen=True)
class PreparedFlow:
    """A flow with every template and condition compiled (once per flow version)."""

    flow: Flow
    renderers: dict[str, Render]
    conditions: dict[tuple[str, int], Condition]
    pack: str = ""
    revision: str = ""
    """The pack revision this flow was published in (empty outside a platform)."""


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
    revision: str = ""
    """The pack revision (flows + component digests) the conversation paused in: its next
    turn runs on exactly that revision while it is kept. Empty in sessions written before."""


class TurnResult(msgspec.Struct):
    """What one turn produced: replies in order, the node ids it ran, and where it paused."""

    replies: list[Reply]
    steps: list[str]
    paused: FlowSnapshot | None = None


class NodeError(GreenticError):
    """An operation failed; `retryable` errors are retried per the node's `retry` policy,
    the others route on status "error" with `{error: {code, message}}` as output."""

    def __init__(self, code: str, message: str, *, retryable: bool = False,
                 backoff_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.backoff_ms = backoff_ms


@dataclass(frozen=True)
class NodeOutcome:
    """An operation's result: a status for routing and an output for later templates.

    `wait=True` pauses the flow until the conversation's next message, which resumes at
    `resume_at` (default: where routing leads). `goto` continues in another flow of the pack.
    """

    output: Any
    status: str = "ok"
    wait: bool = False
    resume_at: str | None = None
    goto: str | None = None


@dataclass
class Turn:
    """What operations see of the turn in progress."""

    envelope: Envelope
    """The inbound message (TenantCtx, conversation, sender…)."""
    context: dict[str, Any]
    """The template context: in, input, prev, node, state, flow."""
    replies: list[Reply]
    """Replies so far; operations may append (emit.response does)."""
    resumed_node: str | None = None
    """The node this turn resumed at, until that node has run once."""
    steps: list[str] = field(default_factory=list)
    """Node ids run so far (sub-flow nodes as `<flow>/<node>`)."""
    resolve: "FlowResolver | None" = None
    """Finds other flows of the same pack (flow.call, flow.goto)."""
    depth: int = 0
    """How deep in flow.call sub-flows this turn is."""
    revision: str = ""
    """The pack revision this turn runs on (components are looked up in it)."""

    @property
    def state(self) -> dict[str, Any]:
        return self.context["state"]


Operation = Callable[[Node, Any, Turn], Awaitable[NodeOutcome]]
"""(node, its arguments rendered for this turn, the turn) → outcome."""
FlowResolver = Callable[[str], PreparedFlow | None]

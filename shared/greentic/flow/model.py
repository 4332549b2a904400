"""The typed IR a `.ygtc` file loads into."""

from typing import Any

import msgspec


class Position(msgspec.Struct, frozen=True):
    """1-based line and column in the flow file."""

    line: int
    col: int


class Route(msgspec.Struct, frozen=True, omit_defaults=True):
    """One routing rule: go `to` a node, or end the flow (`out`) or the turn with a reply."""

    to: str | None = None
    status: str | None = None
    condition: str | None = None
    out: bool = False
    reply: bool = False
    on_message: bool = False
    """Taken only on the turn that resumes this node with a typed message (no button value)."""


class Node(msgspec.Struct, frozen=True):
    """A step: exactly one operation with its arguments, then routing."""

    id: str
    op: str
    args: Any
    routes: tuple[Route, ...]
    """Empty means: end the flow after this node."""
    position: Position = Position(0, 0)
    timeout_ms: int | None = None
    retry_max: int = 0
    retry_backoff_ms: int = 200
    operation: str | None = None
    """For a component called by name: the operation to invoke (the node's `operation`, else
    the bare operation key a sidecar or the pack's components bind)."""


class Flow(msgspec.Struct, frozen=True):
    """A loaded flow; `version` is the sha256 of its source text."""

    id: str
    type: str
    start: str
    nodes: dict[str, Node]
    version: str
    file: str = ""
    title: str = ""
    description: str = ""
    schema_version: int = 2
    parameters: dict[str, Any] = {}
    entrypoints: dict[str, Any] = {}
    bindings: dict[str, str] = {}
    """node id → the component it calls by name (`<component-id>: {…}`, or a bare operation a
    `<flow>.ygtc.resolve.json` sidecar or the pack's components bind)."""

"""The typed IR a `.ygtc` file loads into."""

from typing import Any

import msgspec


class Route(msgspec.Struct, frozen=True, omit_defaults=True):
    """One routing rule: go `to` a node, or end the flow (`out`) / the turn with a reply."""

    to: str | None = None
    status: str | None = None
    out: bool = False
    reply: bool = False


class Node(msgspec.Struct, frozen=True):
    """A step: exactly one operation with its arguments, then routing."""

    id: str
    op: str
    args: Any
    routes: tuple[Route, ...]
    """Empty means: end the flow after this node."""


class Flow(msgspec.Struct, frozen=True):
    """A loaded flow; `version` is the sha256 of its source text."""

    id: str
    type: str
    start: str
    nodes: dict[str, Node]
    version: str
    file: str = ""

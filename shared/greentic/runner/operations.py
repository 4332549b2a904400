"""Flow operations that need runner services: `state.get` / `state.set` over a StateStore.

Scopes: `flow` (default; lives in the flow's snapshot while it is paused, `{{state.x}}`),
`conversation`, `user`, `team`, `tenant` (kept in the StateStore; the tenant is always the
message's own, so no flow can reach another tenant's state).
"""

import hashlib
import re
from typing import Any, get_args

import msgspec

from greentic.errors import SubjectError
from greentic.flow import NodeError, NodeOutcome, Operation, Turn
from greentic.flow.model import Node
from greentic.state import StateKey, StateScope, StateStore

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
SCOPES = ("flow", *get_args(StateScope))


def _owner(turn: Turn, scope: str) -> str:
    envelope = turn.envelope
    owner = {"conversation": envelope.conversation, "user": f"{envelope.channel}-{envelope.sender}",
             "team": envelope.ctx.team, "tenant": envelope.ctx.tenant}[scope]
    return owner if _TOKEN.fullmatch(owner) else hashlib.sha256(owner.encode()).hexdigest()[:40]


def _scope(rendered: dict[str, Any]) -> str:
    scope = str(rendered.get("scope", "flow"))
    if scope not in SCOPES:
        raise NodeError("bad_scope", f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    return scope


def _key(turn: Turn, scope: str, name: str) -> StateKey:
    try:
        key = StateKey(turn.envelope.ctx, scope, _owner(turn, scope), str(name))  # type: ignore[arg-type]
        key.path()
    except SubjectError as exc:
        raise NodeError("bad_key", str(exc)) from None
    return key


def state_operations(store: StateStore) -> dict[str, Operation]:
    """`state.get` and `state.set` bound to `store`."""

    async def state_set(_node: Node, rendered: Any, turn: Turn) -> NodeOutcome:
        if not isinstance(rendered, dict):
            raise NodeError("bad_args", "state.set needs a mapping of values")
        explicit = isinstance(rendered.get("values"), dict)
        values = rendered["values"] if explicit else rendered
        scope = _scope(rendered) if explicit else "flow"
        for name, value in values.items():
            if scope == "flow":
                turn.state[str(name)] = value
            else:
                await store.set(_key(turn, scope, name), msgspec.json.encode(value))
        return NodeOutcome(dict(values))

    async def state_get(_node: Node, rendered: Any, turn: Turn) -> NodeOutcome:
        if not isinstance(rendered, dict) or not rendered.get("key"):
            raise NodeError("bad_args", "state.get needs {key, scope?, default?}")
        scope, name = _scope(rendered), str(rendered["key"])
        if scope == "flow":
            value = turn.state.get(name, rendered.get("default"))
        else:
            raw = await store.get(_key(turn, scope, name))
            value = msgspec.json.decode(raw) if raw is not None else rendered.get("default")
        return NodeOutcome({"value": value}, status="ok" if value is not None else "missing")

    return {"state.set": state_set, "state.get": state_get}

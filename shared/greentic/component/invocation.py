"""The input a `greentic:component@0.5.0` node gets from a flow, as Greentic's runner builds it.

Greentic's runner (greenticai/greentic-runner, crates/greentic-runner-host: runner/engine.rs
`execute_component_call` / `invoke_component_call`, runner/invocation.rs
`build_invocation_envelope`, pack.rs `merge_component_config_into_input_json`) hands a 0.5
component's `invoke(ctx, op, input)` the JSON text of a `greentic_types::InvocationEnvelope`:

    {"ctx": {"env", "tenant", "tenant_id", …, "attempt"}, "flow_id", "node_id", "op",
     "payload": [bytes of the node input's JSON], "metadata": [bytes of its metadata's JSON]}

`payload`/`metadata` are `Vec<u8>` in Rust, so serde writes them as arrays of numbers; the JSON
inside them has sorted keys (serde_json without `preserve_order`). A card invocation (input with
`card_source`/`card_spec`) is passed as plain JSON instead. The component answers a JSON string,
which the runner parses (a string that is not JSON stays a string; an empty one is null).
"""

import json
from typing import Any

from greentic.types.tenant import TenantCtx

LEGACY_KEYS = frozenset({"operation", "op", "component", "component_ref"})


def _json_bytes(value: Any) -> bytes:
    """serde_json::to_vec: compact, keys sorted, UTF-8 (not \\u-escaped)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _pop_first(mapping: dict, *names: str) -> tuple[bool, Any]:
    """Rust's `map.remove(a).or_else(|| map.remove(b))`: the first present key is taken."""
    for name in names:
        if name in mapping:
            return True, mapping.pop(name)
    return False, None


def split_operation_payload(payload: Any) -> tuple[Any, Any]:
    """A node input `{input, config?}` with only legacy keys beside it → (input, config);
    anything else is all input (engine.rs `split_operation_payload`)."""
    if isinstance(payload, dict) and "input" in payload:
        rest = dict(payload)
        node_input, config = rest.pop("input"), rest.pop("config", None)
        if all(key in LEGACY_KEYS for key in rest):
            return node_input, config
    return payload, None


def parse_invocation_payload(value: Any) -> tuple[str | None, Any, Any]:
    """(op, payload, metadata) of a node input (invocation.rs `InvocationPayload::parse`)."""
    if not isinstance(value, dict):
        return None, value, None
    mapping = dict(value)
    if "envelope" in mapping:
        envelope = mapping.pop("envelope")
        if not isinstance(envelope, dict):
            return None, envelope, None
        op = envelope.get("op")
        return (op if isinstance(op, str) else None, envelope.get("payload"),
                envelope.get("metadata"))
    _, op = _pop_first(mapping, "op", "operation")
    op = op if isinstance(op, str) else None
    _, payload = _pop_first(mapping, "payload", "input")
    _, metadata = _pop_first(mapping, "metadata", "config")
    if op is not None or payload is not None or metadata is not None:
        if payload is None and mapping:
            return op, mapping, metadata
        return op, payload, metadata
    return None, mapping, None


def invocation_envelope(payload: Any, operation: str, *, tenant: TenantCtx, flow_id: str,
                        node_id: str, session_id: str, attempt: int,
                        provider_id: str = "") -> dict[str, Any]:
    """The `InvocationEnvelope` for a node input, in the field order serde writes it."""
    op, body, metadata = parse_invocation_payload(payload)
    ctx: dict[str, Any] = {"env": tenant.env, "tenant": tenant.tenant,
                           "tenant_id": tenant.tenant}
    if tenant.team:  # Greentic's runner stamps the verified caller's team here when it has one
        ctx.update(team=tenant.team, team_id=tenant.team)
    if session_id:
        ctx["session_id"] = session_id
    ctx["flow_id"] = flow_id
    ctx["node_id"] = node_id
    if provider_id:
        ctx["provider_id"] = provider_id
    ctx["attempt"] = attempt
    return {"ctx": ctx, "flow_id": flow_id, "node_id": node_id, "op": op or operation,
            "payload": list(_json_bytes(body)), "metadata": list(_json_bytes(metadata))}


def is_card_invocation(value: Any) -> bool:
    """An Adaptive Card invocation goes to the component as plain JSON, not in an envelope."""
    return isinstance(value, dict) and ("card_source" in value or "card_spec" in value)


def node_input_json(payload: Any, operation: str, *, tenant: TenantCtx, flow_id: str,
                    node_id: str, session_id: str, attempt: int, provider_id: str = "",
                    envelope: bool = True) -> str:
    """The `input` string of a 0.5 `invoke` for this node input, built as Greentic's runner
    builds it; `envelope=False` sends the input's JSON as it is (the runner's card path)."""
    node_input, config = split_operation_payload(payload)
    if not envelope or is_card_invocation(node_input):
        value = node_input if config is None else {"config": config, "input": node_input}
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    wrapped = invocation_envelope(node_input, operation, tenant=tenant, flow_id=flow_id,
                                  node_id=node_id, session_id=session_id, attempt=attempt,
                                  provider_id=provider_id)
    if config is not None:  # pack.rs: the node's config rides inside the payload
        inner = json.loads(bytes(wrapped["payload"]))
        wrapped["payload"] = list(_json_bytes({"config": config, "input": inner}))
    return json.dumps(wrapped, separators=(",", ":"), ensure_ascii=False)


def node_output(text: str) -> Any:
    """A 0.5 component's answer as the runner reads it (pack.rs `convert_invoke_result`)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text

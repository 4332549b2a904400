"""The input a node component gets from a flow, and its answer, as Greentic's runner has them.

Greentic's runner (greenticai/greentic-runner, crates/greentic-runner-host) builds one JSON text
for a node call, whichever world the component exports (runner/engine.rs
`execute_component_exec` / `execute_component_call` / `invoke_component_call`,
runner/invocation.rs `build_invocation_envelope`, pack.rs
`merge_component_config_into_input_json`):

- a `component.exec` node passes only its `input` and `config` fields (its ComponentPayload;
  any other field, e.g. quickstart-app's `message:`, is dropped); a node that names the
  component (`<component-id>: {…}`) passes all its fields, split into `{input, config}` only
  when `input` has nothing but legacy keys beside it (`split_operation_payload`);
- the input goes into a `greentic_types::InvocationEnvelope`, serialized as JSON:

      {"ctx": {"env", "tenant", "tenant_id", …, "attempt"}, "flow_id", "node_id", "op",
       "payload": [bytes of the node input's JSON], "metadata": [bytes of its metadata's JSON]}

  `payload`/`metadata` are `Vec<u8>` in Rust, so serde writes them as arrays of numbers; the
  JSON inside them has sorted keys (serde_json without `preserve_order`); a node's `config`
  rides inside the payload as `{"config", "input"}`. A card invocation (input with
  `card_source`/`card_spec`) is passed as plain JSON instead.

A 0.5.0 component's `invoke(ctx, op, input)` gets that text as `input`. For 0.6.0
(component_api.rs `envelope_v0_6`) the envelope is unwrapped: `payload-cbor` is the CBOR of the
JSON inside `payload` (the node input itself, not the envelope; bytes that are not JSON go as a
CBOR byte string), or of the whole text when it is no InvocationEnvelope. Answers: a 0.5 JSON
string, or 0.6 `output-cbor` decoded to JSON (`cbor_to_json_string`; bytes that do not decode
are read as text), are parsed (text that is not JSON stays a string, empty is null); a 0.6
result with `ok: false` is the node error COMPONENT_INVOCATION_FAILED with that text. An answer
`{"ok": false, "error": {code, message}}` or `{"error": {code, message, status?}}` (no
`result`) fails the node (engine.rs `component_error`, `mcp_tool_error`).
"""

import json
from typing import Any

from greentic.component import cbor
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


def node_input_and_config(payload: Any, *, by_name: bool) -> tuple[Any, Any]:
    """(input, config) of a node's fields: all of them for a component called by name
    (`split_operation_payload`); only `input` and `config` for `component.exec`."""
    if by_name:
        return split_operation_payload(payload)
    if not isinstance(payload, dict):
        raise ValueError("invalid payload for component.exec: the node's fields must be a "
                         "mapping")
    return payload.get("input"), payload.get("config")


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


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def node_input_json(payload: Any, operation: str, *, tenant: TenantCtx, flow_id: str,
                    node_id: str, session_id: str, attempt: int, provider_id: str = "",
                    envelope: bool = True, by_name: bool = False) -> str:
    """The JSON text Greentic's runner builds for this node's fields (`payload`, without
    `component`/`operation`): `by_name` for a node naming its component, else a
    `component.exec` node; `envelope=False` sends `payload` as it is (the runner's card path)."""
    if not envelope:
        return _json_text(payload)
    node_input, config = node_input_and_config(payload, by_name=by_name)
    if is_card_invocation(node_input):
        return _json_text(node_input if config is None else {"config": config,
                                                             "input": node_input})
    wrapped = invocation_envelope(node_input, operation, tenant=tenant, flow_id=flow_id,
                                  node_id=node_id, session_id=session_id, attempt=attempt,
                                  provider_id=provider_id)
    if config is not None:  # pack.rs: the node's config rides inside the payload
        inner = json.loads(bytes(wrapped["payload"]))
        wrapped["payload"] = list(_json_bytes({"config": config, "input": inner}))
    return json.dumps(wrapped, separators=(",", ":"), ensure_ascii=False)


def _byte_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value)


def is_invocation_envelope(value: Any) -> bool:
    """Whether serde would read `value` as a `greentic_types::InvocationEnvelope`."""
    if not isinstance(value, dict) or not isinstance(value.get("ctx"), dict):
        return False
    ctx = value["ctx"]
    return (all(isinstance(ctx.get(key), str) for key in ("env", "tenant", "tenant_id"))
            and isinstance(ctx.get("attempt"), int) and not isinstance(ctx["attempt"], bool)
            and isinstance(value.get("flow_id"), str) and isinstance(value.get("op"), str)
            and isinstance(value.get("node_id"), str | None)
            and _byte_list(value.get("payload")) and _byte_list(value.get("metadata")))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # serde_json refuses NaN and Infinity


def envelope_payload_cbor(input_json: str) -> bytes:
    """`payload-cbor` of a 0.6 invoke for the runner's JSON text (`envelope_v0_6`)."""
    try:
        value = json.loads(input_json, parse_constant=_no_constants)
    except ValueError:
        return cbor.dumps(input_json)
    if not is_invocation_envelope(value):
        return cbor.dumps(value)
    payload = bytes(value["payload"])
    try:
        return cbor.dumps(json.loads(payload.decode("utf-8"), parse_constant=_no_constants))
    except ValueError:  # not JSON (nor UTF-8): the bytes themselves
        return cbor.dumps(payload)


def output_cbor_text(output: bytes) -> str:
    """A 0.6 `output-cbor` as the runner's JSON text of it (`cbor_to_json_string`)."""
    try:
        value = cbor.loads_json(output)
    except ValueError:
        return output.decode("utf-8", "replace")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def node_failure(value: Any) -> tuple[str, str] | None:
    """(code, message) when an answer says the node failed (engine.rs `component_error`,
    `mcp_tool_error`), else None."""
    if not isinstance(value, dict) or not isinstance(value.get("error"), dict):
        return None
    error = value["error"]
    code, message = error.get("code"), error.get("message")
    if value.get("ok") is False:
        return (code if isinstance(code, str) else "component_error",
                message if isinstance(message, str) else "component reported error")
    if "result" in value:
        return None
    message = message if isinstance(message, str) else "tool returned an error"
    status = error.get("status")
    if isinstance(status, int) and not isinstance(status, bool) and status >= 0:
        message = f"{message} (status {status})"
    return code if isinstance(code, str) else "tool_error", message


def node_output(text: str) -> Any:
    """A component's answer text as the runner reads it (pack.rs `convert_invoke_result`)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text

"""The node worlds hosted side by side: Greentic's `greentic:component@0.6.0` and `@0.5.0`.

Which one a component implements is read from its exports once, at load (`node_adapter`);
`ComponentHost.invoke` is the same call for both, and each adapter turns it into its world's
arguments and its world's result back into a decoded output (or a ComponentError).

Both start from the JSON text Greentic's runner builds for a node (its InvocationEnvelope, see
`greentic.component.invocation`):

- 0.6.0: `invoke(op, invocation-envelope) -> result<invocation-result, node-error>`; the
  envelope's payload, unwrapped, goes as CBOR (`payload-cbor`), the output comes back as CBOR.
- 0.5.0: `invoke(exec-ctx, op, input: json) -> invoke-result`; `input` is that JSON text, the
  output is the JSON the guest answers.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from wasmtime.component import Record, Variant

from greentic.component.invocation import (
    envelope_payload_cbor,
    node_failure,
    node_input_json,
    node_output,
    output_cbor_text,
)
from greentic.errors import ComponentError
from greentic.interfaces.values import field, record
from greentic.interfaces.wit import NODE_EXPORT, NODE_V05_EXPORT
from greentic.types.tenant import TenantCtx

CheckOutput = Callable[..., None]
"""`ComponentHost.check_output` bound to the component: refuses an oversized result."""


@dataclass(frozen=True)
class NodeCall:
    """One node operation as the flow engine asks for it, before any world's encoding."""

    tenant: TenantCtx
    conversation: str
    op: str
    payload: Any
    component_id: str
    flow_id: str = ""
    step_id: str = ""
    trace_id: str = ""
    i18n_id: str = ""
    """The turn's locale when known (Greentic's runner sends none)."""
    attempt: int = 0
    """Retries so far (0 on the first try)."""
    deadline_ms: int = 0
    """Unix milliseconds by which the call must finish."""
    provider_id: str = ""
    """The channel provider the turn came from, when the caller knows it."""
    envelope: bool = True
    """Wrap the payload in Greentic's InvocationEnvelope, as its runner does for a flow node;
    False sends the payload's JSON as it is (0.6.0: its CBOR)."""
    by_name: bool = False
    """The node names the component (`<component-id>: {…}`): all its fields are the input.
    False for `component.exec`, which passes only its `input` and `config` fields."""

    def input_json(self) -> str:
        """The JSON text Greentic's runner builds for this call (both node worlds)."""
        try:
            return node_input_json(
                self.payload, self.op, tenant=self.tenant, flow_id=self.flow_id,
                node_id=self.step_id, session_id=self.conversation, attempt=self.attempt + 1,
                provider_id=self.provider_id, envelope=self.envelope, by_name=self.by_name)
        except (TypeError, ValueError) as exc:
            raise ComponentError("bad-input", str(exc)) from None


class NodeAdapter(Protocol):
    """How one node world is called."""

    version: str
    export: str
    functions: tuple[str, ...]
    """Exported functions bound at instantiation when the component has them; the first
    (invoke) is required."""

    def arguments(self, call: NodeCall) -> tuple[Any, ...]: ...

    def output(self, result: Any, check: CheckOutput) -> Any: ...

    def describe(self, funcs: dict[str, Any], store: Any) -> dict[str, Any]: ...


U64_MAX = (1 << 64) - 1


def _answer(value: Any) -> Any:
    """An answer the runner's engine reads as a failed node raises ComponentError."""
    failure = node_failure(value)
    if failure is not None:
        raise ComponentError(*failure)
    return value


class NodeV06:
    """`greentic:component/node@0.6.0`, called as the runner's `envelope_v0_6` does."""

    version = "0.6.0"
    export = NODE_EXPORT
    functions = ("invoke", "describe")

    def arguments(self, call: NodeCall) -> tuple[Any, ...]:
        # The runner's values (component_api.rs `envelope_v0_6`): user = the provider it was
        # given, correlation and idempotency key = the session, attempt from 1; its deadline
        # is u64::MAX (none set), ours is the call's real one.
        attempt = call.attempt + 1
        ctx = record(tenant_id=call.tenant.tenant, team_id=call.tenant.team or None,
                     user_id=call.provider_id or None, env_id=call.tenant.env,
                     trace_id=call.trace_id, correlation_id=call.conversation,
                     deadline_ms=call.deadline_ms or U64_MAX, attempt=attempt,
                     idempotency_key=call.conversation or None, i18n_id=call.i18n_id)
        envelope = record(ctx=ctx, flow_id=call.flow_id,
                          step_id=call.step_id or "component.exec",
                          component_id=call.component_id, attempt=attempt,
                          payload_cbor=envelope_payload_cbor(call.input_json()),
                          metadata_cbor=None)
        return (call.op, envelope)

    def output(self, result: Any, check: CheckOutput) -> Any:
        if result.tag != "ok":
            error = result.payload
            check(field(error, "message"))
            raise ComponentError(field(error, "code"), field(error, "message"))
        output = bytes(field(result.payload, "output-cbor"))
        check(output)
        text = output_cbor_text(output)
        if not field(result.payload, "ok"):
            raise ComponentError("COMPONENT_INVOCATION_FAILED", text)
        return _answer(node_output(text))

    def describe(self, funcs: dict[str, Any], store: Any) -> dict[str, Any]:
        if "describe" not in funcs:  # the runner calls only invoke; some builds have no more
            return {}
        descriptor = funcs["describe"](store)
        return {"name": descriptor.name, "version": descriptor.version,
                "operations": [op.name for op in descriptor.ops]}


class NodeV05:
    """`greentic:component/node@0.5.0` (Greentic's legacy world, still what most of its
    published components export)."""

    version = "0.5.0"
    export = NODE_V05_EXPORT
    functions = ("invoke", "get-manifest")

    def arguments(self, call: NodeCall) -> tuple[Any, ...]:
        team = call.tenant.team or None
        deadline = call.deadline_ms or None
        # One record answers both tenant-ctx shapes Greentic shipped for 0.5.0: the published
        # WIT's (tenant, team, user, …, deadline-unix-ms) and its runner's later one (env,
        # tenant-id, team-id, attributes, session-id, …, deadline-ms); wasmtime reads only the
        # fields the binary declares. Values as the runner fills them, plus what we know.
        tenant = record(tenant=call.tenant.tenant, team=team, user=call.provider_id or None,
                        trace_id=call.trace_id or None, i18n_id=call.i18n_id or None,
                        correlation_id=call.conversation or None,
                        deadline_unix_ms=deadline, attempt=call.attempt + 1,
                        idempotency_key=call.conversation or None,
                        env=call.tenant.env, tenant_id=call.tenant.tenant, team_id=team,
                        user_id=call.provider_id or None, attributes=[],
                        session_id=call.conversation or None, flow_id=call.flow_id,
                        node_id=call.step_id or None, provider_id=None,
                        deadline_ms=deadline, impersonation=None)
        ctx = record(tenant=tenant, i18n_id=call.i18n_id or None, flow_id=call.flow_id,
                     node_id=call.step_id or None)
        return (ctx, call.op, call.input_json())

    def output(self, result: Any, check: CheckOutput) -> Any:
        # `invoke-result` is `variant {ok(json), err(node-error)}`: wasmtime-py hands back the
        # bare string or record (its cases have distinct types), a Variant only if tagged
        failed = isinstance(result, Record)
        if isinstance(result, Variant):
            failed, result = result.tag == "err", result.payload
        if failed:
            check(field(result, "message"))
            raise ComponentError(field(result, "code"), field(result, "message"))
        check(result)
        return _answer(node_output(result))

    def describe(self, funcs: dict[str, Any], store: Any) -> dict[str, Any]:
        if "get-manifest" not in funcs:
            return {}
        try:
            manifest = json.loads(funcs["get-manifest"](store))
        except ValueError:
            manifest = {}
        operations = manifest.get("operations") or []
        return {"name": manifest.get("name") or manifest.get("id") or "",
                "version": str(manifest.get("version") or ""),
                "operations": [op.get("name", "") if isinstance(op, dict) else str(op)
                               for op in operations]}


NODE_ADAPTERS: tuple[NodeAdapter, ...] = (NodeV06(), NodeV05())
"""Preferred first: a component exporting both node worlds is called through 0.6.0."""


def node_adapter(exports: set[str]) -> NodeAdapter | None:
    """The adapter of the node world a component exports, if any."""
    return next((adapter for adapter in NODE_ADAPTERS if adapter.export in exports), None)

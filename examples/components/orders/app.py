"""orders: a node-world (greentic:component@0.6.0) guest using Greentic's state and secrets imports.

`lookup` answers about an order, remembers it for the conversation (state-store) and signs
the answer with the tenant's `api-key` secret; `peek` tries to read state with another
tenant's ctx (the host must refuse).
"""

import mini_cbor
from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import node
from wit_world.imports import core, secret_store, state_store, types


def _fail(code: str, message: str) -> Err:
    return Err(core.NodeError(code=code, message=message, retryable=False, backoff_ms=None,
                              details=None))


def _result(output: dict) -> node.InvocationResult:
    return node.InvocationResult(ok=True, output_cbor=mini_cbor.dumps(output),
                                 output_metadata_cbor=None)


class Node(exports.Node):
    def describe(self) -> node.ComponentDescriptor:
        schema = node.IoSchema(schema=node.SchemaSource_RefUri("urn:greentic-py:any"),
                               content_type="application/cbor", schema_version=None)
        ops = [node.Op(name=name, summary=summary, input=schema, output=schema, examples=[])
               for name, summary in (("lookup", "Answer about an order"),
                                     ("peek", "Read state with a given tenant ctx"))]
        return node.ComponentDescriptor(name="orders", version="0.1.0", summary="Order lookups",
                                        capabilities=["state", "secrets"], ops=ops, schemas=[],
                                        setup=None)

    def invoke(self, op: str, envelope: node.InvocationEnvelope) -> node.InvocationResult:
        payload = mini_cbor.loads(envelope.payload_cbor) or {}
        # component.exec sends the node's fields; the operation's arguments are under `input`
        payload = payload.get("input", payload) if isinstance(payload, dict) else {}
        if op == "lookup":
            return self._lookup(str(payload.get("order", "")).strip())
        if op == "peek":
            return self._peek(envelope, str(payload.get("tenant", "")))
        raise _fail("unknown-op", f"orders has no operation {op!r}")

    def _lookup(self, order: str) -> node.InvocationResult:
        if not order:
            raise _fail("invalid-input", "which order? send its number")
        try:
            key = secret_store.read("api-key").decode()
        except Err as err:
            raise _fail("missing-secret", f"api-key: {err.value.message}") from None
        try:
            previous = state_store.read("last-order", None).decode()
        except Err:
            previous = ""
        state_store.write("last-order", order.encode(), None)
        text = f"Order {order} has shipped (checked with key …{key[-4:]})."
        if previous:
            text += f" Last time you asked about {previous}."
        return _result({"text": text, "order": order, "previous": previous})

    def _peek(self, envelope: node.InvocationEnvelope, tenant: str) -> node.InvocationResult:
        ctx = types.TenantCtx(
            env=envelope.ctx.env_id, tenant=tenant, tenant_id=tenant, team=None, team_id=None,
            user=None, user_id=None, trace_id=None, correlation_id=None, session_id=None,
            flow_id=None, node_id=None, provider_id=None, deadline_ms=None, attempt=0,
            idempotency_key=None, impersonation=None)
        try:
            value = state_store.read("last-order", ctx).decode()
        except Err as err:
            raise _fail(err.value.code, err.value.message) from None
        return _result({"text": f"{tenant} last asked about {value}"})

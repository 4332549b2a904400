"""NATS headers: what infrastructure needs without parsing the body."""

from greentic.telemetry.tracing import inject_context
from greentic.types.envelope import Envelope

MSG_ID = "Nats-Msg-Id"
TRACEPARENT = "traceparent"
ENV = "Greentic-Env"
TENANT = "Greentic-Tenant"
TEAM = "Greentic-Team"
CONVERSATION = "Greentic-Conversation"
DEAD_REASON = "Greentic-Dead-Reason"
DEAD_STAGE = "Greentic-Dead-Stage"
DEAD_SUBJECT = "Greentic-Dead-Subject"


def envelope_headers(envelope: Envelope) -> dict[str, str]:
    """Headers for publishing `envelope`, with the current span's trace context."""
    headers = {
        MSG_ID: envelope.id,
        ENV: envelope.ctx.env,
        TENANT: envelope.ctx.tenant,
        TEAM: envelope.ctx.team,
        CONVERSATION: envelope.conversation,
    }
    return inject_context(headers)

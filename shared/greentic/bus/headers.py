"""NATS headers: what infrastructure needs without parsing the body."""

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


def envelope_headers(envelope: Envelope, traceparent: str | None = None) -> dict[str, str]:
    """Headers for publishing `envelope`; `traceparent` is passed through from the input."""
    headers = {
        MSG_ID: envelope.id,
        ENV: envelope.ctx.env,
        TENANT: envelope.ctx.tenant,
        TEAM: envelope.ctx.team,
        CONVERSATION: envelope.conversation,
    }
    if traceparent:
        headers[TRACEPARENT] = traceparent
    return headers

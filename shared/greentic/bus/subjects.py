"""Every subject this platform uses is built and parsed here, with validated tokens."""

import hashlib
import re
from typing import Literal, NamedTuple

from greentic.errors import SubjectError
from greentic.types.tenant import TenantCtx

ROOT = "greentic.messaging"
Stage = Literal["ingress", "routed", "egress"]
STAGES: tuple[Stage, ...] = ("ingress", "routed", "egress")
DEADLETTER_PREFIX = f"{ROOT}.deadletter"
WEBCHAT_PREFIX = "greentic.webchat.activity"
PACK_DEPLOY_SUBJECT = "greentic.admin.pack.deploy"
"""Core NATS request/reply: `greentic pack deploy` → the pack-loader (its leader)."""

_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


def validate_token(field: str, value: str) -> str:
    """Return `value` if it is one safe subject token (letters, digits, `_`, `-`)."""
    if not isinstance(value, str) or not value:
        raise SubjectError(field, value, "must be a non-empty string")
    if len(value) > 128:
        raise SubjectError(field, value, "longer than 128 characters")
    if not _TOKEN.fullmatch(value):
        raise SubjectError(field, value, "only letters, digits, '_' and '-' are allowed "
                           "(no '.', '*', '>' or whitespace)")
    return value


def token_key(**tokens: str) -> str:
    """A KV key of validated tokens joined by dots, in the order given."""
    return ".".join(validate_token(field, value) for field, value in tokens.items())


def conversation_token(conversation: str) -> str:
    """A conversation id as one subject/key token: itself when it is a safe token, else a
    stable digest of it (`h-` + 32 hex chars), so any provider's ids fit."""
    if isinstance(conversation, str) and conversation and len(conversation) <= 128 \
            and _TOKEN.fullmatch(conversation):
        return conversation
    return "h-" + hashlib.sha256(str(conversation).encode()).hexdigest()[:32]


class MessageSubject(NamedTuple):
    """A parsed `greentic.messaging.{stage}.{env}.{tenant}.{team}.{channel}[.{conversation}]`
    subject (only `routed` subjects carry the conversation token)."""

    stage: Stage
    ctx: TenantCtx
    channel: str
    conversation: str | None = None


def message_subject(stage: Stage, ctx: TenantCtx, channel: str,
                    conversation: str | None = None) -> str:
    """Build the subject of one hop for a tenant's channel; `routed` subjects end with the
    conversation's token so that executors can find a conversation's oldest pending message."""
    tokens = [ROOT, stage, validate_token("env", ctx.env), validate_token("tenant", ctx.tenant),
              validate_token("team", ctx.team), validate_token("channel", channel)]
    if conversation is not None:
        tokens.append(validate_token("conversation", conversation))
    return ".".join(tokens)


def parse_message_subject(subject: str) -> MessageSubject:
    """Inverse of `message_subject`; raises SubjectError for anything else."""
    parts = subject.split(".")
    if not (len(parts) == 7 or (len(parts) == 8 and parts[2] == "routed")) \
            or ".".join(parts[:2]) != ROOT or parts[2] not in STAGES:
        raise SubjectError("subject", subject,
                           f"expected {ROOT}.<stage>.<env>.<tenant>.<team>.<channel>"
                           "[.<conversation> for routed]")
    env, tenant, team, channel = (validate_token(n, v) for n, v in
                                  zip(("env", "tenant", "team", "channel"), parts[3:7],
                                      strict=True))
    conversation = validate_token("conversation", parts[7]) if len(parts) == 8 else None
    return MessageSubject(parts[2], TenantCtx(env, tenant, team), channel,  # type: ignore[arg-type]
                          conversation)


def stage_filter(stage: Stage) -> str:
    """The wildcard covering every tenant's subjects of one hop."""
    return f"{ROOT}.{stage}.>"


def tenant_filters(env: str, tenant: str) -> list[str]:
    """The wildcards covering one tenant's messages on every hop, and nothing else (what a
    tenant-scoped `greentic tap` subscribes to, so NATS permissions can enforce the scope)."""
    return [f"{ROOT}.{stage}.{validate_token('env', env)}.{validate_token('tenant', tenant)}.>"
            for stage in STAGES]


def deadletter_subject(stage: Stage) -> str:
    """Where messages that one hop could not handle end up, with the reason in a header."""
    return f"{DEADLETTER_PREFIX}.{stage}"


def webchat_activity_subject(ctx: TenantCtx, channel: str, conversation: str) -> str:
    """The transcript of one WebChat conversation (read back by ingress for Direct Line)."""
    return ".".join((
        WEBCHAT_PREFIX, validate_token("env", ctx.env), validate_token("tenant", ctx.tenant),
        validate_token("team", ctx.team), validate_token("channel", channel),
        validate_token("conversation", conversation),
    ))


RELEASED_PREFIX = "greentic.executor.released"


def released_subject(routed: str) -> str:
    """Core-NATS notice that the oldest pending message of the conversation on the `routed`
    subject was acked (executors waiting for their turn in that conversation wake up)."""
    return RELEASED_PREFIX + routed[len(f"{ROOT}.routed"):]


def routed_of_released(released: str) -> str:
    """Inverse of `released_subject`."""
    return f"{ROOT}.routed" + released[len(RELEASED_PREFIX):]

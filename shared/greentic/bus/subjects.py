"""Every subject this platform uses is built and parsed here, with validated tokens."""

import re
from typing import Literal, NamedTuple

from greentic.errors import SubjectError
from greentic.types.tenant import TenantCtx

ROOT = "greentic.messaging"
Stage = Literal["ingress", "routed", "egress"]
STAGES: tuple[Stage, ...] = ("ingress", "routed", "egress")
DEADLETTER_PREFIX = f"{ROOT}.deadletter"
WEBCHAT_PREFIX = "greentic.webchat.activity"

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


class MessageSubject(NamedTuple):
    """A parsed `greentic.messaging.{stage}.{env}.{tenant}.{team}.{channel}` subject."""

    stage: Stage
    ctx: TenantCtx
    channel: str


def message_subject(stage: Stage, ctx: TenantCtx, channel: str) -> str:
    """Build the subject of one hop for a tenant's channel."""
    return ".".join((
        ROOT, stage, validate_token("env", ctx.env), validate_token("tenant", ctx.tenant),
        validate_token("team", ctx.team), validate_token("channel", channel),
    ))


def parse_message_subject(subject: str) -> MessageSubject:
    """Inverse of `message_subject`; raises SubjectError for anything else."""
    parts = subject.split(".")
    if len(parts) != 7 or ".".join(parts[:2]) != ROOT or parts[2] not in STAGES:
        raise SubjectError("subject", subject,
                           f"expected {ROOT}.<stage>.<env>.<tenant>.<team>.<channel>")
    env, tenant, team, channel = (validate_token(n, v) for n, v in
                                  zip(("env", "tenant", "team", "channel"), parts[3:], strict=True))
    return MessageSubject(parts[2], TenantCtx(env, tenant, team), channel)  # type: ignore[arg-type]


def stage_filter(stage: Stage) -> str:
    """The wildcard covering every tenant's subjects of one hop."""
    return f"{ROOT}.{stage}.>"


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

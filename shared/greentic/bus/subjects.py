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
    """A parsed `greentic.messaging.{stage}.{env}.{tenant}.{team}.{channel}` subject; `routed`
    subjects go on with `.{conversation}.{partition}`."""

    stage: Stage
    ctx: TenantCtx
    channel: str
    conversation: str | None = None
    partition: int | None = None


def partition_of(ctx: TenantCtx, channel: str, conversation: str, partitions: int) -> int:
    """The routed partition of a conversation: a stable hash of its session key, so every
    message of one conversation goes to the one executor owning that partition."""
    key = f"{ctx.env}.{ctx.tenant}.{ctx.team}.{channel}.{conversation}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % partitions


def message_subject(stage: Stage, ctx: TenantCtx, channel: str) -> str:
    """Build the subject of the ingress or egress hop for a tenant's channel."""
    return ".".join((ROOT, stage, validate_token("env", ctx.env),
                     validate_token("tenant", ctx.tenant), validate_token("team", ctx.team),
                     validate_token("channel", channel)))


def routed_subject(ctx: TenantCtx, channel: str, conversation: str, partitions: int) -> str:
    """The routed hop's subject: the channel's, then the conversation's token and its partition
    (the last token, which each partition's consumer filters on)."""
    conversation = validate_token("conversation", conversation)
    partition = partition_of(ctx, channel, conversation, partitions)
    return f"{message_subject('routed', ctx, channel)}.{conversation}.{partition}"


def partition_filter(partition: int) -> str:
    """The routed subjects of one partition, of every tenant."""
    return f"{ROOT}.routed.*.*.*.*.*.{partition}"


def parse_message_subject(subject: str) -> MessageSubject:
    """Inverse of `message_subject` and `routed_subject`; SubjectError for anything else."""
    parts = subject.split(".")
    routed = len(parts) > 2 and parts[2] == "routed"
    if len(parts) != (9 if routed else 7) or ".".join(parts[:2]) != ROOT \
            or parts[2] not in STAGES:
        raise SubjectError("subject", subject,
                           f"expected {ROOT}.<stage>.<env>.<tenant>.<team>.<channel>"
                           "[.<conversation>.<partition> for routed]")
    env, tenant, team, channel = (validate_token(n, v) for n, v in
                                  zip(("env", "tenant", "team", "channel"), parts[3:7],
                                      strict=True))
    if not routed:
        return MessageSubject(parts[2], TenantCtx(env, tenant, team), channel)  # type: ignore[arg-type]
    if not parts[8].isdigit():
        raise SubjectError("partition", parts[8], "must be a partition number")
    return MessageSubject("routed", TenantCtx(env, tenant, team), channel,
                          validate_token("conversation", parts[7]), int(parts[8]))


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


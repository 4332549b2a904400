"""What a session is: its key (tenant-namespaced, tokens validated) and its versioned value."""

from typing import Any, NamedTuple

import msgspec

from greentic.bus.subjects import token_key, validate_token
from greentic.errors import SubjectError
from greentic.types.tenant import TenantCtx

SESSION_VERSION = 1
APPLIED_KEPT = 16
"""How many recently applied message ids a session remembers (redelivery detection)."""


class SessionKey(NamedTuple):
    """One conversation of one channel of one tenant's team."""

    ctx: TenantCtx
    channel: str
    conversation: str

    def path(self) -> str:
        """`{env}.{tenant}.{team}.{channel}.{conversation}` with every token validated."""
        return token_key(env=self.ctx.env, tenant=self.ctx.tenant, team=self.ctx.team,
                         channel=self.channel, conversation=self.conversation)


def parse_session_key(text: str) -> SessionKey:
    """Inverse of `SessionKey.path()`; SubjectError for anything else."""
    parts = text.split(".")
    if len(parts) != 5:
        raise SubjectError("session key", text, "expected {env}.{tenant}.{team}.{channel}."
                           "{conversation}")
    env, tenant, team, channel, conversation = (
        validate_token(name, value) for name, value in zip(
            ("env", "tenant", "team", "channel", "conversation"), parts, strict=True))
    return SessionKey(TenantCtx(env, tenant, team), channel, conversation)


def key_pattern(env: str, tenant: str | None = None, team: str | None = None,
                channel: str | None = None) -> str:
    """A pattern over session paths; None means any value of that token."""
    tokens = [("env", env), ("tenant", tenant), ("team", team), ("channel", channel)]
    return ".".join("*" if value is None else validate_token(name, value)
                    for name, value in tokens) + ".*"


class Session(msgspec.Struct, kw_only=True):
    """A conversation's state between turns. New fields get defaults and go last."""

    v: int = SESSION_VERSION
    turns: int = 0
    """Turns applied so far (exactly one per inbound message, redeliveries included)."""
    snapshot: dict[str, Any] | None = None
    """The paused flow (`FlowSnapshot` as stored by the executor), or None at the start."""
    state: dict[str, Any] = {}
    """Conversation data kept outside any one flow."""
    applied: list[str] = []
    """Ids of the last applied inbound messages, oldest first (redeliveries are recognised)."""
    replies: list[dict[str, Any]] = []
    """Replies of the last applied message, republished if it is delivered again."""
    created_ms: int = 0
    updated_ms: int = 0
    routed_seq: int = 0
    """GREENTIC_ROUTED sequence of the last applied message: messages of one conversation are
    applied in stream order, so any message at or below it was applied already."""
    routed_epoch: str = ""
    """Creation time of the GREENTIC_ROUTED stream `routed_seq` belongs to (sequences restart
    if the stream is ever recreated)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Session)


def session_document(key: SessionKey, session: Session, revision: int) -> dict[str, Any]:
    """A session as operators see it (`greentic session show`, the admin API)."""
    return {"key": key.path(), "revision": revision, **msgspec.to_builtins(session)}


def encode_session(session: Session) -> bytes:
    return _encoder.encode(session)


def decode_session(data: bytes) -> Session:
    return _decoder.decode(data)

"""The envelope: the one message type of every hop, JSON on the wire, versioned."""

from typing import Any, Literal

import msgspec

from greentic.errors import EnvelopeError
from greentic.types.tenant import TenantCtx

ENVELOPE_VERSION = 1


class Button(msgspec.Struct, omit_defaults=True):
    """A choice offered to the user; `value` comes back as the user's input when clicked."""

    title: str
    value: str = ""


class Attachment(msgspec.Struct, omit_defaults=True):
    """A file, card or other non-text content."""

    content_type: str
    url: str | None = None
    name: str | None = None
    content: Any = None


class FlowRef(msgspec.Struct, frozen=True):
    """Which flow of which pack handles a message (set by the router)."""

    pack: str
    flow: str


class Envelope(msgspec.Struct, kw_only=True):
    """One chat message on its way through ingress → router → executor → egress.

    New fields get defaults and go last, so older services keep decoding newer envelopes.
    """

    v: int = ENVELOPE_VERSION
    id: str
    ctx: TenantCtx
    channel: str
    provider: str
    conversation: str
    direction: Literal["in", "out"] = "in"
    sender: str = ""
    text: str = ""
    attachments: list[Attachment] = []
    buttons: list[Button] = []
    value: Any = None
    """Structured input, e.g. the payload of a clicked button."""
    reply_to: str | None = None
    """For outbound messages: the id of the inbound message being answered."""
    thread: str | None = None
    created_ms: int = 0
    flow: FlowRef | None = None
    raw: Any = None
    """The provider's original payload; set by ingress only."""
    reply_target: str | None = None
    """Where the provider wants replies sent (chat or channel id) when `conversation`, a
    subject-safe token, cannot say it exactly."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def encode_envelope(envelope: Envelope) -> bytes:
    """Envelope → JSON bytes for the wire."""
    return _encoder.encode(envelope)


def decode_envelope(data: bytes) -> Envelope:
    """JSON bytes → Envelope; garbage raises EnvelopeError saying which field is wrong."""
    try:
        envelope = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"not a valid envelope: {exc}") from None
    if envelope.v > ENVELOPE_VERSION:
        raise EnvelopeError(f"envelope version {envelope.v} is newer than {ENVELOPE_VERSION}")
    return envelope

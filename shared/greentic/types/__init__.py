"""The foundation: tenant context, envelope and ids. Imports nothing above it."""

from greentic.types.envelope import (
    ENVELOPE_VERSION,
    Attachment,
    Button,
    Envelope,
    FlowRef,
    decode_envelope,
    encode_envelope,
)
from greentic.types.ids import derive_id, new_id
from greentic.types.tenant import TenantCtx

__all__ = [
    "ENVELOPE_VERSION",
    "Attachment",
    "Button",
    "Envelope",
    "FlowRef",
    "TenantCtx",
    "decode_envelope",
    "derive_id",
    "encode_envelope",
    "new_id",
]

"""The envelope: one schema for every hop, JSON on the wire."""

import msgspec
import pytest

from greentic.errors import EnvelopeError
from greentic.types import (
    Attachment,
    Button,
    Envelope,
    FlowRef,
    TenantCtx,
    decode_envelope,
    derive_id,
    encode_envelope,
    new_id,
)

CTX = TenantCtx("dev", "acme", "support")


def full_envelope() -> Envelope:
    return Envelope(id=new_id(), ctx=CTX, channel="webchat", provider="webchat",
                    conversation="c1", sender="u1", text="héllo ✓", direction="out",
                    buttons=[Button("Yes", "y")], attachments=[Attachment("image/png", url="u")],
                    value={"k": [1, 2]}, reply_to="x", thread="t", created_ms=5,
                    flow=FlowRef("pack", "flow"), raw={"any": "thing"})


def test_every_field_survives_a_round_trip() -> None:
    envelope = full_envelope()
    assert decode_envelope(encode_envelope(envelope)) == envelope


def test_the_wire_form_is_readable_json_with_the_version() -> None:
    wire = msgspec.json.decode(encode_envelope(full_envelope()))
    assert wire["v"] == 1
    assert wire["ctx"] == {"env": "dev", "tenant": "acme", "team": "support"}
    assert wire["text"] == "héllo ✓"


def test_unknown_fields_from_newer_services_are_ignored() -> None:
    wire = msgspec.json.decode(encode_envelope(full_envelope()))
    wire["added_later"] = {"x": 1}
    assert decode_envelope(msgspec.json.encode(wire)).text == "héllo ✓"


# `words` are ours, or the field a decode error names (msgspec's sentence around it may change)
@pytest.mark.parametrize(("data", "words"), [
    (b"{not json", "not a valid envelope"),
    (b"[]", "not a valid envelope"),
    (b'{"id": "x"}', "`ctx`"),
    (b'{"id": 1, "ctx": {"env": "d", "tenant": "t", "team": "m"}, "channel": "c", '
     b'"provider": "p", "conversation": "c"}', "`$.id`"),
])
def test_garbage_raises_envelope_error_naming_the_problem(data: bytes, words: str) -> None:
    with pytest.raises(EnvelopeError, match="not a valid envelope") as caught:
        decode_envelope(data)
    assert words in str(caught.value)


def test_a_newer_major_version_is_refused() -> None:
    wire = msgspec.json.decode(encode_envelope(full_envelope()))
    wire["v"] = 2
    with pytest.raises(EnvelopeError, match="version 2"):
        decode_envelope(msgspec.json.encode(wire))


def test_ids_are_unique_sortable_tokens_and_derived_ids_are_deterministic() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 26 and i.isalnum() for i in ids)
    assert derive_id("abc", 0) == derive_id("abc", 0) != derive_id("abc", 1)

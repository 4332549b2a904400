"""Request bodies of any shape: decoded within limits, read without crashing."""

import msgspec
import pytest

from greentic.errors import EnvelopeError
from greentic.hosting.web import MAX_JSON_DEPTH, decode_json, json_depth
from greentic.providers.webchat.activity import Activity
from greentic.providers.webhooks import json_list, json_object, optional_text
from greentic.types.envelope import decode_envelope


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_nested_up_to_the_limit_is_accepted_and_deeper_is_refused() -> None:
    assert json_depth(decode_json(nested(MAX_JSON_DEPTH))) == MAX_JSON_DEPTH
    for depth in (MAX_JSON_DEPTH + 1, 900, 100_000):
        with pytest.raises(msgspec.DecodeError, match=f"nested deeper than {MAX_JSON_DEPTH}"):
            decode_json(nested(depth))


def test_a_typed_body_keeps_an_error_naming_the_field() -> None:
    # the field's path is ours to rely on; the rest of the sentence is msgspec's wording
    with pytest.raises(msgspec.DecodeError, match=r"`\$\.text`"):
        decode_json(b'{"type": "message", "text": 42}', Activity)
    assert decode_json(b'{"type": "message", "from": {"id": "u"}}', Activity).from_.id == "u"


def test_an_envelope_too_deep_to_decode_is_an_envelope_error_not_a_crash() -> None:
    with pytest.raises(EnvelopeError, match="not a valid envelope"):
        decode_envelope(b'{"v": 1, "raw": ' + nested(5000) + b"}")


@pytest.mark.parametrize("value", [{"a": 1}, [1], "text", 2, None, True])
def test_provider_fields_of_the_wrong_shape_read_as_empty(value: object) -> None:
    assert json_object(value) == (value if isinstance(value, dict) else {})
    assert json_list(value) == (value if isinstance(value, list) else [])
    assert optional_text(value) == (None if value is None else str(value))


@pytest.mark.parametrize("body", [b'"\x80"', b'{"type": "message", "text": "\xff\xfe"}'])
def test_invalid_utf8_inside_a_string_is_a_decode_error(body: bytes) -> None:
    # the type is the contract (the services answer 400 on it); the wording is msgspec's own
    with pytest.raises(msgspec.DecodeError):
        decode_json(body)
    with pytest.raises(EnvelopeError, match="not a valid envelope"):
        decode_envelope(body)

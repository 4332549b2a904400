"""One way to declare a message type's JSON codec: readable on the wire, decoded into the type."""

from collections.abc import Callable
from typing import TypeVar

import msgspec

T = TypeVar("T")
_ENCODER = msgspec.json.Encoder()


def json_codec(kind: type[T]) -> tuple[Callable[[T], bytes], Callable[[bytes], T]]:
    """(encode, decode) for `kind`; decode raises msgspec's errors for a malformed value."""
    return _ENCODER.encode, msgspec.json.Decoder(kind).decode

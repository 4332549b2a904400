"""CBOR as Greentic writes it, and a decoder that hands back plain data.

Greentic encodes with ciborium (greentic-types `src/cbor/mod.rs` `encode_pack_manifest`:
`ciborium::ser::into_writer`): definite lengths, the shortest integer heads, floats in the
shortest of half/single/double that keeps the value, maps in the order serde emits them (struct
fields in declaration order, `BTreeMap`/`serde_json::Value` objects sorted by key). Its
"canonical" variant (greentic-types `src/cbor/canonical.rs` `to_canonical_cbor_allow_floats`,
used for `sbom.cbor` and `components/<id>.manifest.cbor`) re-sorts every map by key length,
then bytewise. Python dicts keep insertion order, so the caller builds maps in serde's order.
"""

import math
import struct
from typing import Any

import cbor2

from greentic.errors import PackError

SELF_DESCRIBE_TAG = 55799  # older greentic-pack builds prefix manifest.cbor with it


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise PackError(f"integer {value} does not fit CBOR's 64 bits")


def _float(value: float) -> bytes:
    """The shortest IEEE encoding that gives `value` back (ciborium's rule)."""
    if math.isnan(value):
        return b"\xf9\x7e\x00"
    for code, fmt in ((0xF9, ">e"), (0xFA, ">f")):
        try:
            packed = struct.pack(fmt, value)
        except OverflowError:
            continue
        if struct.unpack(fmt, packed)[0] == value:
            return bytes([code]) + packed
    return b"\xfb" + struct.pack(">d", value)


def _encode(value: Any, out: list[bytes], canonical: bool) -> None:
    if value is None:
        out.append(b"\xf6")
    elif value is True:
        out.append(b"\xf5")
    elif value is False:
        out.append(b"\xf4")
    elif isinstance(value, int):
        out.append(_head(0, value) if value >= 0 else _head(1, -1 - value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out.append(_head(3, len(data)) + data)
    elif isinstance(value, bytes):
        out.append(_head(2, len(value)) + value)
    elif isinstance(value, list | tuple):
        out.append(_head(4, len(value)))
        for item in value:
            _encode(item, out, canonical)
    elif isinstance(value, dict):
        items = list(value.items())
        if canonical:
            if not all(isinstance(key, str) for key, _ in items):
                raise PackError("canonical CBOR maps need text keys")
            items.sort(key=lambda item: (len(item[0].encode()), item[0].encode()))
        out.append(_head(5, len(items)))
        for key, item in items:
            _encode(key, out, canonical)
            _encode(item, out, canonical)
    else:
        raise PackError(f"cannot encode {type(value).__name__} as CBOR")


def encode_cbor(value: Any) -> bytes:
    """`value` as ciborium writes it, maps in the order the dicts hold."""
    out: list[bytes] = []
    _encode(value, out, canonical=False)
    return b"".join(out)


def encode_canonical_cbor(value: Any) -> bytes:
    """`value` as greentic-types' canonical CBOR: maps sorted by key length, then bytes."""
    out: list[bytes] = []
    _encode(value, out, canonical=True)
    return b"".join(out)


def _plain(value: Any) -> Any:
    if isinstance(value, cbor2.CBORTag):
        if value.tag != SELF_DESCRIBE_TAG:
            raise PackError(f"CBOR tag {value.tag} where Greentic writes none")
        return _plain(value.value)
    if isinstance(value, dict | cbor2.frozendict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    raise PackError(f"CBOR value of type {type(value).__name__} where Greentic writes none")


def decode_cbor(data: bytes, entry: str) -> Any:
    """Plain data (dict, list, str, int, float, bool, None, bytes) of one CBOR entry."""
    try:
        return _plain(cbor2.loads(data, tag_hook=lambda _decoder, tag: tag))
    except PackError as exc:
        raise PackError(exc.reason, entry=entry) from None
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, OverflowError,
            MemoryError) as exc:
        reason = "truncated" if isinstance(exc, cbor2.CBORDecodeEOF) else "not readable"
        raise PackError(f"{reason} CBOR: {exc}", entry=entry) from None

"""CBOR as Greentic's runner writes and reads it for 0.6.0 node components.

The runner converts between JSON and CBOR through `serde_json::Value` and serde_cbor 0.11
(component_api.rs `envelope_v0_6`, `cbor_to_json_string`), so what a guest receives is
serde_cbor's encoding of a JSON value: definite lengths, map keys in sorted order (serde_json's
BTreeMap), integers in their shortest form, a float in the shortest of f16/f32/f64 that holds
it exactly. Reading back, only what fits a JSON value decodes: byte strings, non-text map keys,
tags and trailing bytes do not (the runner then falls back to the bytes as text); NaN and
infinities become null, as serde_json makes them.
"""

import io
import math
import struct
from typing import Any

import cbor2

_U64 = 1 << 64
_I64 = 1 << 63


def _head(major: int, length: int, out: bytearray) -> None:
    if length < 24:
        out.append(major << 5 | length)
    elif length < 1 << 8:
        out += bytes((major << 5 | 24, length))
    elif length < 1 << 16:
        out.append(major << 5 | 25)
        out += length.to_bytes(2, "big")
    elif length < 1 << 32:
        out.append(major << 5 | 26)
        out += length.to_bytes(4, "big")
    else:
        out.append(major << 5 | 27)
        out += length.to_bytes(8, "big")


def _float(value: float, out: bytearray) -> None:
    if math.isnan(value):
        out += b"\xf9\x7e\x00"
        return
    if math.isinf(value):
        out += b"\xf9\x7c\x00" if value > 0 else b"\xf9\xfc\x00"
        return
    try:
        single = struct.unpack(">f", struct.pack(">f", value))[0]
    except OverflowError:  # beyond f32: Rust's `as f32` gives infinity, which differs
        single = None
    if single != value:
        out.append(0xFB)
        out += struct.pack(">d", value)
        return
    try:
        half = struct.pack(">e", value)
    except OverflowError:
        half = None
    if half is not None and struct.unpack(">e", half)[0] == value:
        out.append(0xF9)
        out += half
    else:
        out.append(0xFA)
        out += struct.pack(">f", value)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if 0 <= value < _U64:
            _head(0, value, out)
        elif -_I64 <= value < 0:
            _head(1, -1 - value, out)
        else:  # serde_json reads an integer beyond 64 bits as a float
            _float(float(value), out)
    elif isinstance(value, float):
        _float(value, out)
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _head(3, len(data), out)
        out += data
    elif isinstance(value, bytes | bytearray):
        _head(2, len(value), out)
        out += value
    elif isinstance(value, list | tuple):
        _head(4, len(value), out)
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        _head(5, len(value), out)
        for key in sorted(value):
            _encode(str(key), out)
            _encode(value[key], out)
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def dumps(value: Any) -> bytes:
    """serde_cbor::to_vec of the serde_json::Value `value` (bytes become a byte string)."""
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _as_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -_I64 <= value < _U64:
            raise ValueError("integer out of the 64-bit range")
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("a map key is not text")
        return {key: _as_json(item) for key, item in value.items()}
    if value is cbor2.undefined:
        return None
    raise ValueError(f"{type(value).__name__} does not fit a JSON value")


def loads_json(data: bytes) -> Any:
    """serde_cbor::from_slice::<serde_json::Value>: one CBOR item that fits JSON, nothing
    after it; ValueError otherwise."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # a guest's bytes: any failure to decode means "not CBOR"
        raise ValueError(f"not CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise ValueError("trailing bytes after the CBOR item")
    return _as_json(value)

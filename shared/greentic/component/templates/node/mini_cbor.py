"""The CBOR subset the orders guest needs (maps, lists, text, bytes, ints, bools, null)."""

import struct


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if value < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, value)
    raise ValueError("integer too large")


def dumps(value) -> bytes:
    if value is None:
        return b"\xf6"
    if value is True or value is False:
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode()
        return _head(3, len(data)) + data
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(dumps(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(dumps(k) + dumps(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__}")


def loads(data: bytes):
    value, _ = _read(data, 0)
    return value


def _read(data: bytes, at: int):
    major, info = data[at] >> 5, data[at] & 31
    at += 1
    if major == 7:
        return {20: False, 21: True, 22: None, 23: None}[info], at
    if info < 24:
        arg = info
    else:
        size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        arg = int.from_bytes(data[at:at + size], "big")
        at += size
    if major == 0:
        return arg, at
    if major == 1:
        return -1 - arg, at
    if major in (2, 3):
        chunk = data[at:at + arg]
        return (bytes(chunk) if major == 2 else chunk.decode()), at + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, at = _read(data, at)
            items.append(item)
        return items, at
    if major == 5:
        result = {}
        for _ in range(arg):
            key, at = _read(data, at)
            result[key], at = _read(data, at)
        return result, at
    raise ValueError(f"unsupported CBOR major type {major}")

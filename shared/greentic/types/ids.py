"""Message ids: random for new input, derived deterministically for everything it causes."""

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id() -> str:
    """A time-sortable 26-char id (ULID layout) that is safe as a subject token."""
    millis = time.time_ns() // 1_000_000
    return _b32(millis, 10) + _b32(int.from_bytes(os.urandom(10), "big"), 16)


def derive_id(parent: str, suffix: str | int) -> str:
    """The id of something caused by `parent`; the same input always yields the same id,
    so a redelivered message republishes under the same `Nats-Msg-Id` and is deduplicated."""
    return f"{parent}-{suffix}"

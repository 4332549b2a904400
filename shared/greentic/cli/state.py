"""What a running `greentic up` tells the other commands (`send`, `tap`): `.greentic/up.json`."""

import os
from pathlib import Path

import msgspec

STATE_DIR = Path(".greentic")
STATE_FILE = STATE_DIR / "up.json"


class UpState(msgspec.Struct):
    nats_url: str
    ingress_url: str
    pid: int


def write_state(state: UpState) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    STATE_FILE.write_bytes(msgspec.json.encode(state))


def read_state() -> UpState | None:
    """The state of a `greentic up` that is still running in this directory, if any."""
    try:
        state = msgspec.json.decode(STATE_FILE.read_bytes(), type=UpState)
        os.kill(state.pid, 0)
    except (OSError, msgspec.DecodeError):
        return None
    return state


def default_nats_url() -> str:
    """GREENTIC_NATS_URL, else the NATS of a running `greentic up`, else the NATS default."""
    if url := os.environ.get("GREENTIC_NATS_URL"):
        return url
    state = read_state()
    return state.nats_url if state else "nats://127.0.0.1:4222"


def default_ingress_url() -> str:
    """GREENTIC_INGRESS_URL, else the ingress of a running `greentic up`, else port 8080."""
    if url := os.environ.get("GREENTIC_INGRESS_URL"):
        return url
    state = read_state()
    return state.ingress_url if state else "http://127.0.0.1:8080"

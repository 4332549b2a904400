"""Connecting to NATS so that a service rides out server restarts."""

import nats
import structlog
from nats.aio.client import Client

log = structlog.get_logger(__name__)


async def connect(url: str, name: str, *, creds: str = "") -> Client:
    """Connect with reconnects forever (nats-py gives up after ~2 minutes by default);
    `creds` is the path of a NATS credentials file, if the server wants one."""

    async def on_disconnected() -> None:
        log.warning("nats disconnected", service=name)

    async def on_reconnected() -> None:
        log.info("nats reconnected", service=name)

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", service=name, error=str(exc))

    return await nats.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        allow_reconnect=True,
        ping_interval=10,
        max_outstanding_pings=3,
        connect_timeout=5,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        error_cb=on_error,
        user_credentials=creds or None,
    )

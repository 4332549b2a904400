"""Sending to provider APIs: classify answers, honour Retry-After, never send twice.

A 2xx is recorded in the `greentic-egress-sent` KV bucket under the envelope id; a
redelivered reply that is already recorded is not sent again. (A crash between the
provider's 2xx and that record can still repeat one send: no provider API here offers an
idempotency key to close that gap.)
"""

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import aiohttp
import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from greentic.errors import DeadLetter, RetryLater

log = structlog.get_logger(__name__)
SENT_BUCKET = "greentic-egress-sent"
SENT_TTL_S = 24 * 3600


async def sent_log(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    return await js.create_key_value(KeyValueConfig(bucket=SENT_BUCKET, ttl=SENT_TTL_S,
                                                    storage=StorageType.FILE, replicas=replicas))


def _key(envelope_id: str) -> str:
    return hashlib.sha256(envelope_id.encode()).hexdigest()


async def already_sent(sent: KeyValue, envelope_id: str) -> bool:
    try:
        await sent.get(_key(envelope_id))
    except KeyNotFoundError:
        return False
    return True


async def mark_sent(sent: KeyValue, envelope_id: str, *, within_s: float = 15.0) -> None:
    """Record a delivery. Retried for `within_s` (a replicated bucket elects a new leader in
    seconds): a reply whose record is lost is sent again when it is redelivered."""
    delay = 0.1
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            await sent.put(_key(envelope_id), b"1")
            return
        except (nats.errors.Error, TimeoutError) as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("recording a delivery failed; retrying", error=repr(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _retry_after(response: aiohttp.ClientResponse, body: Any) -> float | None:
    header = response.headers.get("Retry-After")
    if header and header.strip().isdigit():
        return float(header)
    if isinstance(body, dict):  # Telegram: {"parameters": {"retry_after": 3}}
        seconds = (body.get("parameters") or {}).get("retry_after")
        if isinstance(seconds, int | float):
            return float(seconds)
    return None


@dataclass
class HttpSender:
    """A provider's egress over its HTTP API, on the one client session egress shares."""

    http: aiohttp.ClientSession


async def post_json(http: aiohttp.ClientSession, url: str, payload: dict[str, Any], *,
                    provider: str, headers: dict[str, str] | None = None) -> Any:
    """POST JSON; 2xx → the parsed body; 429/5xx/network → RetryLater; other 4xx → DeadLetter."""
    try:
        async with http.post(url, json=payload, headers=headers,
                             timeout=aiohttp.ClientTimeout(total=15)) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            if response.status == 429:
                raise RetryLater(f"{provider} rate limited (429)", _retry_after(response, body))
            if response.status >= 500:
                raise RetryLater(f"{provider} answered {response.status}",
                                 _retry_after(response, body))
            if response.status >= 400:
                raise DeadLetter(f"{provider} refused the message: HTTP {response.status} "
                                 f"{str(body)[:300]}")
            return body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryLater(f"{provider} unreachable: {exc!r}") from None

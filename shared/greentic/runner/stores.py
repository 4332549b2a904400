"""The session and state stores a process uses, chosen by GREENTIC_SESSION_BACKEND."""

from typing import NamedTuple

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

from greentic.bus.topology import SESSIONS_BUCKET, STATE_BUCKET
from greentic.config.settings import Settings
from greentic.errors import StoreUnavailable
from greentic.session.kv import JetStreamRecords
from greentic.session.records import MemoryRecords, Records
from greentic.session.redis_store import RedisRecords
from greentic.session.store import RecordSessionStore
from greentic.state.backends import RecordStateStore


class Stores(NamedTuple):
    """Sessions (idle expiry) and state (no expiry) on one backend."""

    sessions: RecordSessionStore
    state: RecordStateStore

    async def close(self) -> None:
        await self.sessions.close()
        await self.state.close()


async def open_records(settings: Settings, js: JetStreamContext | None, space: str,
                       ttl_s: float | None, *, ensure: bool = True) -> Records:
    """One space (`sessions` or `state`) of the configured backend; fails, never falls back.

    `ensure=False` binds to an existing bucket without touching its TTL (operator commands)."""
    if settings.session_backend == "redis":
        return await RedisRecords.open(settings.redis_url, settings.redis_prefix, space, ttl_s)
    if settings.session_backend == "memory":
        return MemoryRecords(ttl_s)
    assert js is not None, "the jetstream backend needs a NATS connection"
    bucket = SESSIONS_BUCKET if space == "sessions" else STATE_BUCKET
    if not ensure:
        try:
            return JetStreamRecords(await js.key_value(bucket), js, bucket)
        except BucketNotFoundError:
            raise StoreUnavailable(f"KV bucket {bucket} does not exist yet (no executor has "
                                   "started with GREENTIC_SESSION_BACKEND=jetstream)") from None
    return await JetStreamRecords.open(js, bucket, ttl_s, settings.nats_replicas)


async def open_stores(settings: Settings, js: JetStreamContext | None, *,
                      ensure: bool = True) -> Stores:
    """Open both stores (creating KV buckets or checking Redis answers)."""
    sessions = await open_records(settings, js, "sessions", settings.session_ttl_s,
                                  ensure=ensure)
    state = await open_records(settings, js, "state", None, ensure=ensure)
    return Stores(RecordSessionStore(sessions), RecordStateStore(state))

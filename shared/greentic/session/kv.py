"""Records in a JetStream KV bucket: revision = stream sequence, CAS = expected last sequence."""


from nats.js import JetStreamContext
from nats.js.errors import APIError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from greentic.bus.topology import ensure_bucket
from greentic.errors import RevisionConflict

# JSStreamWrongLastSequenceErrF (single server) and JSStreamWrongLastSequenceConstantErr
# (replicated buckets, R>1). nats-py ≥ 2.15 maps both to KeyWrongLastSequenceError; the codes
# are checked as well so that a plain APIError from another code path is still a conflict.
WRONG_LAST_SEQUENCE_CODES = (10071, 10164)
LISTING_IDLE_S = 5.0
"""A key listing ends when no entry came for this long (keys can expire while it runs)."""


def _is_conflict(exc: APIError) -> bool:
    return isinstance(exc, KeyWrongLastSequenceError) or exc.err_code in WRONG_LAST_SEQUENCE_CODES


class JetStreamRecords:
    """A KV bucket shared by every executor; idle values expire by the bucket's max_age."""

    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self.kv = kv
        self.js = js
        self.bucket = bucket

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, ttl_s: float | None,
                   replicas: int = 1) -> "JetStreamRecords":
        """Create or update the bucket (idempotent) and bind to it."""
        return cls(await ensure_bucket(js, bucket, ttl_s, replicas=replicas), js, bucket)

    async def get(self, path: str) -> tuple[bytes, int] | None:
        try:
            entry = await self.kv.get(path)
        except NotFoundError:  # KeyNotFoundError, KeyDeletedError (tombstone)
            return None
        if entry.value is None:
            return None
        return entry.value, entry.revision or 0

    async def create(self, path: str, value: bytes) -> int:
        try:
            return await self.kv.create(path, value)
        except APIError as exc:
            if _is_conflict(exc):
                raise RevisionConflict(path, 0) from None
            raise

    async def update(self, path: str, value: bytes, revision: int) -> int:
        try:
            return await self.kv.update(path, value, last=revision)
        except APIError as exc:
            if _is_conflict(exc):
                raise RevisionConflict(path, revision) from None
            raise

    async def put(self, path: str, value: bytes) -> int:
        return await self.kv.put(path, value)

    async def delete(self, path: str) -> None:
        await self.kv.purge(path)

    async def paths(self, pattern: str) -> list[str]:
        """Live keys matching `pattern`. The stream says how many keys (values or tombstones)
        there are; the watch delivers the last entry of each. nats-py's own end-of-values
        marker can come before the entries (a race between its consumer-info call and the
        delivery), so the count, not the marker, ends the listing."""
        info = await self.js.stream_info(f"KV_{self.bucket}",
                                         subjects_filter=f"$KV.{self.bucket}.{pattern}")
        expected = len(info.state.subjects or {})
        found: set[str] = set()
        if not expected:
            return []
        watcher = await self.kv.watch(pattern, meta_only=True)
        seen = 0
        try:
            while seen < expected:
                try:
                    entry = await watcher.updates(LISTING_IDLE_S)
                except TimeoutError:  # (nats-py's is one) keys expired meanwhile: listing done
                    break
                if entry is None:
                    continue
                seen += 1
                if entry.operation in (KV_DEL, KV_PURGE):
                    found.discard(entry.key)
                else:
                    found.add(entry.key)
                if entry.delta == 0:
                    break
        finally:
            await watcher.stop()
        return sorted(found)

    async def close(self) -> None:
        """The NATS connection belongs to the caller."""

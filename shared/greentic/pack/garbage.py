"""Component bytes no kept pack revision names any more leave the object store.

Every revision a tenant's pack keeps (GREENTIC_PACK_VERSIONS_KEPT, in every env sharing the
NATS) lists its components' digests, and so does the component index (what executors load
now). pack-loader writes a revision before it uploads that revision's bytes, so bytes in the
store are named from the moment they arrive. Bytes younger than a grace period stay regardless
(another pack-loader may be between those two steps), and a round that cannot read every
revision and index entry deletes nothing.
"""

import datetime
import re
from dataclasses import dataclass

import msgspec
import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from greentic.bus.topology import COMPONENT_INDEX_BUCKET, PACK_VERSIONS_BUCKET
from greentic.pack.index import HISTORY_TOKEN, decode_component_document, decode_pack_version

log = structlog.get_logger(__name__)

GRACE_S = 600.0
"""Bytes stored less than this long ago are never deleted."""
_FRACTION = re.compile(r"(\.\d{6})\d+")
SUBJECTS_PAGE = 100_000
"""nats-server answers a stream's subjects in pages of this many (JSMaxSubjectDetails)."""


class IncompleteListing(Exception):
    """Not every key could be listed: nothing may be deleted."""


async def named_digests(js: JetStreamContext, versions: KeyValue, index: KeyValue
                        ) -> set[str]:
    """The component digests of every kept revision and every published component, of every
    env's tenants and packs."""
    digests: set[str] = set()
    for key in await _live_keys(js, PACK_VERSIONS_BUCKET):
        if not key.endswith(f".{HISTORY_TOKEN}"):
            revision = await _value(versions, key)
            if revision is not None:
                digests.update(c.digest for c in decode_pack_version(revision).components)
    for key in await _live_keys(js, COMPONENT_INDEX_BUCKET):
        component = await _value(index, key)
        if component is not None:
            digests.add(decode_component_document(component).digest)
    return digests


async def _live_keys(js: JetStreamContext, bucket: str) -> list[str]:
    """Every key the bucket's stream holds a message for (values and tombstones)."""
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    subjects = info.state.subjects or {}
    if len(subjects) >= SUBJECTS_PAGE:  # nats-py reads only the first page: maybe not all
        raise IncompleteListing(f"{len(subjects)} keys or more in {bucket}")
    return [subject.removeprefix(prefix) for subject in subjects]


async def _value(kv: KeyValue, key: str) -> bytes | None:
    try:
        return (await kv.get(key)).value or b""
    except KeyNotFoundError:  # purged or deleted: names nothing
        return None


def stored_at(mtime: str | None) -> datetime.datetime | None:
    """An object's RFC 3339 mtime (nanoseconds allowed), or None when absent or unreadable."""
    if not mtime:
        return None
    try:
        return datetime.datetime.fromisoformat(_FRACTION.sub(r"\1", mtime))
    except ValueError:
        return None


async def delete_unnamed(js: JetStreamContext, versions: KeyValue, index: KeyValue,
                         objects: ObjectStore, *, keep: set[str], grace_s: float = GRACE_S
                         ) -> list[str]:
    """Delete the objects no kept revision or published component names (and not in `keep`,
    nor younger than `grace_s`); returns their names. Any read failing deletes nothing."""
    try:
        named = await named_digests(js, versions, index) | keep
        stored = await objects.list(ignore_deletes=True)
    except NotFoundError:  # an empty store
        return []
    except (msgspec.DecodeError, msgspec.ValidationError, IncompleteListing) as exc:
        log.warning("the kept revisions and published components could not all be read; "
                    "no component bytes deleted", error=str(exc))
        return []
    now = datetime.datetime.now(datetime.UTC)
    deleted = []
    for info in stored:
        when = stored_at(info.mtime)
        if info.deleted or info.name in named or when is None or \
                (now - when).total_seconds() < grace_s:
            continue
        await objects.delete(info.name)
        deleted.append(info.name)
        log.info("component bytes deleted: no kept revision or published component names them",
                 digest=info.name[:12], size=info.size)
    return deleted


@dataclass
class UnnamedBytesCollector:
    """pack-loader's collection rounds: once after start (for a leader that stopped in between)
    until one succeeds, and after every sync that purged revisions."""

    js: JetStreamContext
    versions: KeyValue
    index: KeyValue
    objects: ObjectStore
    due: bool = True
    """Look for unnamed component bytes after the next sync."""
    deleted: int = 0

    async def collect(self, keep: set[str]) -> list[str]:
        """Delete the component bytes nothing names (but `keep`); returns their digests. A bus
        failure is logged and deletes nothing (the next purge retries)."""
        try:
            deleted = await delete_unnamed(self.js, self.versions, self.index, self.objects,
                                           keep=keep, grace_s=GRACE_S)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("looking for unnamed component bytes failed; next purge retries",
                        error=repr(exc))
            return []
        self.due = False
        self.deleted += len(deleted)
        return deleted

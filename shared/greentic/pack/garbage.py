"""Component bytes no kept pack revision names any more leave the object store.

Every revision a tenant's pack keeps (GREENTIC_PACK_VERSIONS_KEPT, in every env sharing the
NATS) lists its components' digests; the current one is the newest kept. pack-loader writes a
revision before it uploads that revision's bytes, so bytes in the store are named by a revision
from the moment they arrive. Bytes younger than a grace period stay regardless (another
pack-loader may be between those two steps), and a round that cannot read every revision
deletes nothing.
"""

import datetime
import re

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from greentic.bus.topology import PACK_VERSIONS_BUCKET
from greentic.pack.index import HISTORY_TOKEN, decode_pack_version

log = structlog.get_logger(__name__)

GRACE_S = 600.0
"""Bytes stored less than this long ago are never deleted."""
_FRACTION = re.compile(r"(\.\d{6})\d+")
SUBJECTS_PAGE = 100_000
"""nats-server answers a stream's subjects in pages of this many (JSMaxSubjectDetails)."""


class IncompleteListing(Exception):
    """Not every kept revision could be listed: nothing may be deleted."""


async def named_digests(js: JetStreamContext, versions: KeyValue) -> set[str]:
    """The component digests of every kept revision, of every env's tenants and packs."""
    prefix = f"$KV.{PACK_VERSIONS_BUCKET}."
    info = await js.stream_info(f"KV_{PACK_VERSIONS_BUCKET}", subjects_filter=f"{prefix}>")
    subjects = info.state.subjects or {}
    if len(subjects) >= SUBJECTS_PAGE:  # nats-py reads only the first page: maybe not all
        raise IncompleteListing(f"{len(subjects)} pack revision keys or more")
    digests: set[str] = set()
    for subject in subjects:
        key = subject.removeprefix(prefix)
        if key.endswith(f".{HISTORY_TOKEN}"):
            continue
        try:
            entry = await versions.get(key)
        except KeyNotFoundError:  # purged: no longer kept
            continue
        digests.update(c.digest for c in decode_pack_version(entry.value or b"").components)
    return digests


def stored_at(mtime: str | None) -> datetime.datetime | None:
    """An object's RFC 3339 mtime (nanoseconds allowed), or None when absent or unreadable."""
    if not mtime:
        return None
    try:
        return datetime.datetime.fromisoformat(_FRACTION.sub(r"\1", mtime))
    except ValueError:
        return None


async def delete_unnamed(js: JetStreamContext, versions: KeyValue, objects: ObjectStore, *,
                         keep: set[str], grace_s: float = GRACE_S) -> list[str]:
    """Delete the objects no kept revision names (and not in `keep`, nor younger than
    `grace_s`); returns their names. Any read failing deletes nothing."""
    try:
        named = await named_digests(js, versions) | keep
        stored = await objects.list(ignore_deletes=True)
    except NotFoundError:  # an empty store
        return []
    except (msgspec.DecodeError, msgspec.ValidationError, IncompleteListing) as exc:
        log.warning("the kept pack revisions could not all be read; no component bytes "
                    "deleted", error=str(exc))
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
        log.info("component bytes deleted: no kept pack revision names them",
                 digest=info.name[:12], size=info.size)
    return deleted

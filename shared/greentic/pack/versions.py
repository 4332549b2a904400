"""pack-loader's side of version pinning: one immutable document per pack revision and tenant
in KV, the last `kept` revisions listed per tenant's pack, older ones purged.

Executors load a revision's document only for a conversation that paused in a revision that is
no longer current (runner/pack_versions.py); the current revision is what they watch anyway.
"""

import time
from collections.abc import Iterable

import msgspec
import structlog
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from greentic.pack.index import (
    ComponentDocument,
    FlowDocument,
    PackHistory,
    PackVersionDocument,
    decode_pack_history,
    encode_pack_history,
    encode_pack_version,
    pack_history_key,
    pack_version_key,
)

log = structlog.get_logger(__name__)


def revision_documents(flows: Iterable[tuple[str, FlowDocument | None]],
                       components: Iterable[tuple[str, ComponentDocument | None]]
                       ) -> list[PackVersionDocument]:
    """Each tenant's pack revision (its flows + components) of the documents a sync publishes;
    None documents (a refused pack's, kept as they are) make none."""
    revisions: dict[tuple[str, str], PackVersionDocument] = {}
    for document in (d for _, d in flows if d is not None):
        revisions.setdefault((document.tenant, document.pack), PackVersionDocument(
            tenant=document.tenant, pack=document.pack, pack_version=document.pack_version,
            revision=document.revision, published_ms=int(time.time() * 1000), flows=[],
            components=[])).flows.append(document)
    for component in (d for _, d in components if d is not None):
        found = revisions.get((component.tenant, component.pack))
        if found is not None:
            found.components.append(component)
    return list(revisions.values())


class PackVersionIndex:
    """Writes revision documents and keeps each tenant's pack history to `kept` revisions."""

    def __init__(self, kv: KeyValue, env: str, kept: int) -> None:
        self.kv = kv
        self.env = env
        self.kept = kept
        self._histories: dict[str, list[str]] = {}  # history key → revisions, oldest first
        self.purged = 0

    async def history(self, tenant: str, pack: str) -> list[str]:
        """The kept revisions of `tenant`'s `pack`, oldest first (the last is current)."""
        key = pack_history_key(self.env, tenant, pack)
        if key not in self._histories:
            try:
                entry = await self.kv.get(key)
                self._histories[key] = decode_pack_history(entry.value or b"").revisions
            except (KeyNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
                self._histories[key] = []
        return self._histories[key]

    async def record(self, document: PackVersionDocument) -> list[str]:
        """Make `document` the current revision of its tenant's pack: write it (once), append
        it to the history, purge the revisions beyond `kept`; returns the purged ones.

        Called before the current flow and component documents are published, so an executor
        that sees a revision can always load it."""
        revisions = await self.history(document.tenant, document.pack)
        if revisions and revisions[-1] == document.revision:
            return []
        key = pack_version_key(self.env, document.tenant, document.pack, document.revision)
        try:
            await self.kv.get(key)  # a kept revision deployed again: already written
        except KeyNotFoundError:
            await self.kv.put(key, encode_pack_version(document))
        updated = [r for r in revisions if r != document.revision] + [document.revision]
        purged, updated = updated[:-self.kept], updated[-self.kept:]
        await self.kv.put(pack_history_key(self.env, document.tenant, document.pack),
                          encode_pack_history(PackHistory(revisions=updated)))
        self._histories[pack_history_key(self.env, document.tenant, document.pack)] = updated
        for revision in purged:
            await self.kv.purge(pack_version_key(self.env, document.tenant, document.pack,
                                                 revision))
            self.purged += 1
            log.info("pack revision purged", tenant=document.tenant, pack=document.pack,
                     revision=revision, kept=self.kept)
        return purged

    async def record_revisions(self, flows: Iterable[tuple[str, FlowDocument | None]],
                               components: Iterable[tuple[str, ComponentDocument | None]]
                               ) -> bool:
        """Record each tenant's pack revision of what a sync publishes, before it becomes
        current; True if older revisions were purged meanwhile."""
        purged = False
        for document in revision_documents(flows, components):
            purged |= bool(await self.record(document))
        return purged

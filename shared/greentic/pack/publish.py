"""What pack-loader publishes of its packs: each tenant's flow and component documents, the
component bytes in the object store (by sha256), and the KV flow and component indexes kept
equal to them (changed entries put, entries of no pack any more withdrawn)."""

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Hashable, Iterable
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import msgspec
import structlog
from nats.js.errors import KeyNotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from greentic.config.bundle import Bundle
from greentic.pack.index import (
    ComponentDocument,
    FlowDocument,
    component_key,
    decode_component_document,
    decode_flow_document,
    encode_component_document,
    encode_flow_document,
    flow_key,
)
from greentic.pack.verify import PackContents

log = structlog.get_logger(__name__)


class Documents(NamedTuple):
    """What a sync publishes, by KV key; a None document keeps what is published under its key
    (a refused pack's last good version)."""

    flows: list[tuple[str, FlowDocument | None]]
    components: list[tuple[str, ComponentDocument | None]]
    blobs: dict[str, Path | bytes]
    """Component bytes by sha256: a component file, or bytes from a verified `.gtpack`."""

    def add_pack(self, env: str, bundle: Bundle, pack_id: str, contents: PackContents) -> None:
        """The documents of pack `pack_id` for every tenant of the bundle that uses it."""
        for _, digest, _, blob in contents.components:
            self.blobs[digest] = blob
        for tenant_id, tenant in bundle.tenants.items():
            if pack_id not in tenant.packs:
                continue
            for flow in contents.flows:
                key = flow_key(env, tenant_id, pack_id, flow.id)
                self.flows.append((key, FlowDocument(
                    tenant=tenant_id, pack=pack_id, pack_version=contents.version,
                    flow=flow.id, file=flow.file, source=flow.source, bindings=flow.bindings,
                    version=contents.flow_versions[flow.id], revision=contents.revision)))
            for component, digest, size, _ in contents.components:
                key = component_key(env, tenant_id, pack_id, component.id)
                self.components.append((key, ComponentDocument(
                    tenant=tenant_id, pack=pack_id, pack_version=contents.version,
                    digest=digest, size=size, manifest=component, revision=contents.revision)))

    def keep(self, flows: Iterable[str], components: Iterable[str]) -> None:
        """Leave these published flow and component keys as they are."""
        self.flows.extend((key, None) for key in flows)
        self.components.extend((key, None) for key in components)

    def digests(self) -> set[str]:
        """The component bytes these documents name."""
        return {document.digest for _, document in self.components if document}


class ComponentBytes:
    """Component bytes in the object store under their sha256, each uploaded once."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._uploaded: set[str] = set()  # digests known to be in the object store

    async def upload(self, digest: str, blob: Path | bytes) -> bool:
        """Put component bytes (a file's, or from a verified `.gtpack`) in the object store
        under their digest (once); False when a file no longer hashes to it."""
        if digest in self._uploaded:
            return True
        try:
            await self._objects.get_info(digest)
        except ObjectNotFoundError:
            data = blob if isinstance(blob, bytes) else await asyncio.to_thread(blob.read_bytes)
            if hashlib.sha256(data).hexdigest() != digest:
                log.warning("component file changed while being published; next sync retries",
                            file=str(blob))
                return False
            await self._objects.put(digest, data)
            log.info("component uploaded", digest=digest[:12], size=len(data),
                     file="(.gtpack)" if isinstance(blob, bytes) else str(blob))
        self._uploaded.add(digest)
        return True

    def forget(self, digests: Iterable[str]) -> None:
        """These were deleted from the store: upload them again when asked."""
        self._uploaded -= set(digests)


D = TypeVar("D", FlowDocument, ComponentDocument)


class IndexPublisher(Generic[D]):
    """A KV index kept equal to the documents of the last sync. A key published by an earlier
    run (a restart, another replica) is read once rather than written again."""

    kind = ""
    """What the index holds, in log events."""

    def __init__(self) -> None:
        self.kv: KeyValue | None = None  # the bucket, once the service started
        self.published: dict[str, Hashable] = {}  # key → fingerprint of the document there
        self.publishes = 0

    def fingerprint(self, document: D) -> Hashable:
        """What must differ for a document to be published again."""
        raise NotImplementedError

    def encode(self, document: D) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> D:
        raise NotImplementedError

    def described(self, document: D) -> dict[str, str]:
        """What the "published" log event says of a document besides its key."""
        raise NotImplementedError

    def keys_of(self, pack_id: str) -> list[str]:
        """The published keys of pack `pack_id` (keys are `{env}.{tenant}.{pack}.{id}`)."""
        return [key for key in self.published if key.split(".")[2] == pack_id]

    async def _publish(self, documents: list[tuple[str, D | None]],
                       ready: Callable[[D], Awaitable[bool]] | None = None) -> None:
        """Put each changed document (once `ready` says so); withdraw every key not in
        `documents`."""
        assert self.kv is not None
        wanted = {key for key, _ in documents}
        for key, document in documents:
            if document is None:
                continue
            fingerprint = self.fingerprint(document)
            if self.published.get(key) == fingerprint:
                continue
            if ready is not None and not await ready(document):
                continue
            if key not in self.published and await self._stored(key) == fingerprint:
                self.published[key] = fingerprint
                continue
            await self.kv.put(key, self.encode(document))
            self.published[key] = fingerprint
            self.publishes += 1
            log.info(f"{self.kind} published", key=key, **self.described(document))
        for key in set(self.published) - wanted:
            await self.kv.delete(key)
            del self.published[key]
            log.info(f"{self.kind} withdrawn", key=key)

    async def _stored(self, key: str) -> Hashable | None:
        """The fingerprint of the document KV holds under `key` (None: none, or unreadable)."""
        assert self.kv is not None
        try:
            return self.fingerprint(self.decode((await self.kv.get(key)).value or b""))
        except (KeyNotFoundError, msgspec.DecodeError):
            return None


class FlowIndex(IndexPublisher[FlowDocument]):
    """The flow index executors watch; a flow is published again when its version or its
    pack's revision changed."""

    kind = "flow"

    def fingerprint(self, document: FlowDocument) -> Hashable:
        return document.version, document.revision

    def encode(self, document: FlowDocument) -> bytes:
        return encode_flow_document(document)

    def decode(self, data: bytes) -> FlowDocument:
        return decode_flow_document(data)

    def described(self, document: FlowDocument) -> dict[str, str]:
        return {"version": document.version[:12], "revision": document.revision}

    async def publish(self, documents: list[tuple[str, FlowDocument | None]]) -> None:
        """Publish changed flows, withdraw those of no pack any more."""
        await self._publish(documents)


class ComponentIndex(IndexPublisher[ComponentDocument]):
    """The component index executors watch; an entry is published again when anything of it
    changed."""

    kind = "component"

    def fingerprint(self, document: ComponentDocument) -> Hashable:
        return encode_component_document(document)

    def encode(self, document: ComponentDocument) -> bytes:
        return encode_component_document(document)

    def decode(self, data: bytes) -> ComponentDocument:
        return decode_component_document(data)

    def described(self, document: ComponentDocument) -> dict[str, str]:
        return {"digest": document.digest[:12]}

    async def publish(self, documents: list[tuple[str, ComponentDocument | None]],
                      blobs: dict[str, Path | bytes], store: ComponentBytes) -> None:
        """Upload new component bytes, then publish changed index entries; withdraw gone ones.

        Bytes go first, so an executor that sees an index entry can always fetch them."""
        await self._publish(documents, lambda d: store.upload(d.digest, blobs[d.digest]))

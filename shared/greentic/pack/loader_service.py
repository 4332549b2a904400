"""pack-loader: reads the bundle's packs and publishes their flows to the KV flow index and
their components to the object store (bytes, by sha256) and the KV component index.

Executors never read flows or components from disk; they watch the indexes. A pack that fails
to load is refused with its error logged, and the last good version stays published.
"""

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue

from greentic.bus.topology import COMPONENT_INDEX_BUCKET, COMPONENTS_OBJECT_STORE, FLOWS_BUCKET
from greentic.config.bundle import Bundle
from greentic.config.settings import Settings
from greentic.errors import GreenticError
from greentic.flow.loader import load_flow
from greentic.pack.devsource import dev_component_files, read_dev_pack
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

log = structlog.get_logger(__name__)


class PackLoaderService:
    name = "pack-loader"

    def __init__(self, settings: Settings, bundle: Bundle) -> None:
        self.settings = settings
        self.bundle = bundle
        self._kv: KeyValue | None = None
        self._components_kv: KeyValue | None = None
        self._objects: Any = None
        self._published: dict[str, str] = {}  # key → version
        self._published_components: dict[str, bytes] = {}  # key → encoded document
        self._uploaded: set[str] = set()  # digests known to be in the object store
        self._digests: dict[tuple[str, int, int], str] = {}  # (path, mtime, size) → sha256
        self._stopping = asyncio.Event()
        self.publishes = 0
        self.refusals = 0

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        self._kv = await js.key_value(FLOWS_BUCKET)
        self._components_kv = await js.key_value(COMPONENT_INDEX_BUCKET)
        self._objects = await js.object_store(COMPONENTS_OBJECT_STORE)
        await self.sync()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.settings.flow_poll_s)
            except TimeoutError:
                await self.sync()

    async def stop(self) -> None:
        self._stopping.set()

    def stats(self) -> dict[str, Any]:
        return {"flows": len(self._published), "components": len(self._published_components),
                "publishes": self.publishes, "refusals": self.refusals}

    def _documents(self) -> tuple[list[tuple[str, FlowDocument | None]],
                                  list[tuple[str, ComponentDocument | None]], dict[str, Path]]:
        documents: list[tuple[str, FlowDocument | None]] = []
        component_documents: list[tuple[str, ComponentDocument | None]] = []
        blobs: dict[str, Path] = {}
        for pack_id in self.bundle.packs:
            try:
                pack_dir = self.bundle.pack_dir(pack_id)
                manifest, flows = read_dev_pack(pack_dir)
                # refuse what executors could not run
                ids = {flow.id for flow in flows}
                versions = {flow.id: load_flow(flow.source, flow.file, pack_flows=ids).version
                            for flow in flows}
                components = dev_component_files(pack_dir, manifest)
            except GreenticError as exc:
                self.refusals += 1
                log.error("pack refused; keeping the last good version", pack=pack_id,
                          error=str(exc))
                documents.extend((key, None) for key in self._published
                                 if key.split(".")[2] == pack_id)
                component_documents.extend((key, None) for key in self._published_components
                                           if key.split(".")[2] == pack_id)
                continue
            digests = {}
            for component, path in components:
                digest, size = self._digest(path)
                digests[component.id] = (digest, size)
                blobs[digest] = path
            for tenant_id, tenant in self.bundle.tenants.items():
                if pack_id not in tenant.packs:
                    continue
                for flow in flows:
                    key = flow_key(self.settings.env, tenant_id, pack_id, flow.id)
                    documents.append((key, FlowDocument(
                        tenant=tenant_id, pack=pack_id, pack_version=manifest.version,
                        flow=flow.id, file=flow.file, source=flow.source,
                        version=versions[flow.id])))
                for component, _ in components:
                    digest, size = digests[component.id]
                    key = component_key(self.settings.env, tenant_id, pack_id, component.id)
                    component_documents.append((key, ComponentDocument(
                        tenant=tenant_id, pack=pack_id, pack_version=manifest.version,
                        digest=digest, size=size, manifest=component)))
        return documents, component_documents, blobs

    async def sync(self) -> None:
        """Publish every flow whose version changed; remove flows no longer in a pack."""
        assert self._kv is not None
        documents, component_documents, blobs = await asyncio.to_thread(self._documents)
        await self._sync_components(component_documents, blobs)
        wanted = {key for key, _ in documents}
        for key, document in documents:
            if document is None or self._published.get(key) == document.version:
                continue
            if key not in self._published:
                try:
                    current = decode_flow_document((await self._kv.get(key)).value or b"")
                    if current.version == document.version:
                        self._published[key] = document.version
                        continue
                except (KeyNotFoundError, msgspec.DecodeError):
                    pass
            await self._kv.put(key, encode_flow_document(document))
            self._published[key] = document.version
            self.publishes += 1
            log.info("flow published", key=key, version=document.version[:12])
        for key in set(self._published) - wanted:
            await self._kv.delete(key)
            del self._published[key]
            log.info("flow withdrawn", key=key)

    def _digest(self, path: Path) -> tuple[str, int]:
        """sha256 and size of a component file, re-hashed only when the file changed."""
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._digests:
            self._digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._digests[key], stat.st_size

    async def _upload(self, digest: str, path: Path) -> bool:
        """Put component bytes in the object store under their digest (once)."""
        if digest in self._uploaded:
            return True
        try:
            await self._objects.get_info(digest)
        except ObjectNotFoundError:
            data = await asyncio.to_thread(path.read_bytes)
            if hashlib.sha256(data).hexdigest() != digest:
                log.warning("component file changed while being published; next sync retries",
                            file=str(path))
                return False
            await self._objects.put(digest, data)
            log.info("component uploaded", digest=digest[:12], size=len(data), file=str(path))
        self._uploaded.add(digest)
        return True

    async def _sync_components(self, documents: list[tuple[str, ComponentDocument | None]],
                               blobs: dict[str, Path]) -> None:
        """Upload new component bytes, then publish changed index entries; withdraw gone ones.

        Bytes go first, so an executor that sees an index entry can always fetch them."""
        assert self._components_kv is not None
        wanted = {key for key, _ in documents}
        for key, document in documents:
            if document is None:
                continue
            encoded = encode_component_document(document)
            if self._published_components.get(key) == encoded:
                continue
            if not await self._upload(document.digest, blobs[document.digest]):
                continue
            if key not in self._published_components:
                try:
                    entry = await self._components_kv.get(key)
                    if encode_component_document(
                            decode_component_document(entry.value or b"")) == encoded:
                        self._published_components[key] = encoded
                        continue
                except (KeyNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
                    pass
            await self._components_kv.put(key, encoded)
            self._published_components[key] = encoded
            self.publishes += 1
            log.info("component published", key=key, digest=document.digest[:12])
        for key in set(self._published_components) - wanted:
            await self._components_kv.delete(key)
            del self._published_components[key]
            log.info("component withdrawn", key=key)

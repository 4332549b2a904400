"""pack-loader: reads the bundle's packs and publishes their flows to the KV flow index and
their components to the object store (bytes, by sha256) and the KV component index.

A pack is a source directory (dev mode, unsigned) or a `.gtpack` file (local, or pulled from an
OCI registry into the cache before each sync), verified (signature by a
trusted key, every entry against the SBOM and manifest) before anything of it is published.
Executors never read flows or components from disk; they watch the indexes. A pack that fails
to load or verify is refused with its error logged, and the last good version stays published.
"""

import asyncio
import hashlib
import time
from collections.abc import Mapping
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
from greentic.errors import ConfigError, GreenticError, PackError
from greentic.flow.loader import load_flow
from greentic.pack.archive import PackArchive, PackLimits, read_pack_file
from greentic.pack.devsource import PackFlowSource, dev_component_files, read_dev_pack
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
from greentic.pack.keys import parse_trusted_keys
from greentic.pack.oci import OciOptions, ProgressLog
from greentic.pack.resolve import resolve_pack
from greentic.pack.sign import Trust
from greentic.types.component import ComponentManifest
from greentic.types.oci import parse_reference

log = structlog.get_logger(__name__)

PULL_RETRY_S = 5.0
"""A failed pull is tried again after this long (or GREENTIC_PACK_REFRESH_S, if shorter)."""


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
        try:
            self._trust = Trust(keys=parse_trusted_keys(settings.trusted_keys),
                                policy=settings.pack_policy)
        except PackError as exc:
            raise ConfigError(f"GREENTIC_TRUSTED_KEYS: {exc}") from None
        self._limits = PackLimits(max_archive_bytes=settings.pack_max_bytes)
        # .gtpack path → (mtime, size, inode) and what verifying it gave: re-verified on change
        self._verified: dict[str, tuple[tuple[int, int, int], PackArchive | PackError]] = {}
        if settings.pack_policy == "dev":
            log.warning("DEV TRUST POLICY: .gtpack files signed by ANY key will be loaded "
                        "(GREENTIC_PACK_POLICY=dev); never use it in production")
        self._oci = OciOptions.from_settings(settings)
        # oci pack id → (when last asked, last good cached .gtpack or None, whether that failed)
        self._pulled: dict[str, tuple[float, Path | None, bool]] = {}
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

    async def _resolve_sources(self) -> dict[str, Path | None]:
        """Every pack's local path. `oci` packs are pulled through the cache; a tag is asked for
        again every GREENTIC_PACK_REFRESH_S, a digest-pinned pack only once. A failed pull is
        logged and counted as a refusal, and the last good path stays (None: none yet)."""
        sources: dict[str, Path | None] = {}
        for pack_id, source in self.bundle.packs.items():
            if source.oci is None:
                sources[pack_id] = self.bundle.pack_dir(pack_id)
                continue
            pinned = source.digest is not None or parse_reference(source.oci).digest is not None
            path: Path | None = None
            if pack_id in self._pulled:
                asked, path, failed = self._pulled[pack_id]
                wait = min(PULL_RETRY_S, self.settings.pack_refresh_s) if failed \
                    else self.settings.pack_refresh_s
                if (pinned and path is not None and path.is_file()) or \
                        time.monotonic() - asked < wait:
                    sources[pack_id] = path
                    continue
            progress = ProgressLog(lambda done, total, pack=pack_id: log.info(
                "pack pull", pack=pack, bytes=done, total=total,
                percent=round(100 * done / total) if total else 100))
            try:
                pulled = await resolve_pack(
                    source.oci, base_dir=self.bundle.base_dir,
                    cache_dir=self.settings.pack_cache_dir, digest=source.digest,
                    limits=self._limits, progress=progress, options=self._oci)
            except PackError as exc:
                self.refusals += 1
                log.error("pack pull failed; keeping the last good version", pack=pack_id,
                          error=str(exc))
                self._pulled[pack_id] = (time.monotonic(), path, True)
            else:
                if pulled != path:
                    log.info("pack pulled", pack=pack_id, oci=source.oci, file=str(pulled))
                self._pulled[pack_id] = (time.monotonic(), pulled, False)
            sources[pack_id] = self._pulled[pack_id][1]
        return sources

    def _documents(self, sources: Mapping[str, Path | None] | None = None) -> tuple[
            list[tuple[str, FlowDocument | None]], list[tuple[str, ComponentDocument | None]],
            dict[str, Path | bytes]]:
        """What to publish; `sources` (from `_resolve_sources`) says where each pack is, a
        None one has never been pulled and is skipped (its pull failure was logged)."""
        documents: list[tuple[str, FlowDocument | None]] = []
        component_documents: list[tuple[str, ComponentDocument | None]] = []
        blobs: dict[str, Path | bytes] = {}
        for pack_id in self.bundle.packs:
            if sources is not None and sources.get(pack_id) is None:
                continue
            try:
                pack_path = sources[pack_id] if sources else self.bundle.pack_dir(pack_id)
                if pack_path.is_file():
                    pack_version, flows, components = self._signed_pack(pack_id, pack_path)
                else:
                    manifest, flows = read_dev_pack(pack_path)
                    pack_version = manifest.version
                    components = [(component, *self._digest(path), path) for component, path
                                  in dev_component_files(pack_path, manifest)]
                # refuse what executors could not run
                ids = {flow.id for flow in flows}
                versions = {flow.id: load_flow(flow.source, flow.file, pack_flows=ids).version
                            for flow in flows}
            except GreenticError as exc:
                self.refusals += 1
                log.error("pack refused; keeping the last good version", pack=pack_id,
                          error=str(exc))
                documents.extend((key, None) for key in self._published
                                 if key.split(".")[2] == pack_id)
                component_documents.extend((key, None) for key in self._published_components
                                           if key.split(".")[2] == pack_id)
                continue
            for _, digest, _, blob in components:
                blobs[digest] = blob
            for tenant_id, tenant in self.bundle.tenants.items():
                if pack_id not in tenant.packs:
                    continue
                for flow in flows:
                    key = flow_key(self.settings.env, tenant_id, pack_id, flow.id)
                    documents.append((key, FlowDocument(
                        tenant=tenant_id, pack=pack_id, pack_version=pack_version,
                        flow=flow.id, file=flow.file, source=flow.source,
                        version=versions[flow.id])))
                for component, digest, size, _ in components:
                    key = component_key(self.settings.env, tenant_id, pack_id, component.id)
                    component_documents.append((key, ComponentDocument(
                        tenant=tenant_id, pack=pack_id, pack_version=pack_version,
                        digest=digest, size=size, manifest=component)))
        return documents, component_documents, blobs

    async def sync(self) -> None:
        """Publish every flow whose version changed; remove flows no longer in a pack."""
        assert self._kv is not None
        sources = await self._resolve_sources()
        documents, component_documents, blobs = await asyncio.to_thread(self._documents, sources)
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

    def _signed_pack(self, pack_id: str, path: Path) -> tuple[
            str, list[PackFlowSource], list[tuple[ComponentManifest, str, int, bytes]]]:
        """A `.gtpack`'s version, flows and components, verified; raises PackError (cached
        until the file changes, so a large bad pack is not re-read every poll)."""
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._verified.get(str(path))
        if cached is None or cached[0] != key:
            try:
                result: PackArchive | PackError = read_pack_file(path, trust=self._trust,
                                                                 limits=self._limits)
            except PackError as exc:
                result = exc
            else:
                if result.manifest.pack_id != pack_id:
                    result = PackError(f"pack_id {result.manifest.pack_id!r} is not the bundle's "
                                       f"{pack_id!r}", entry="manifest.cbor:pack_id")
                else:
                    log.info("pack verified", pack=pack_id, version=result.manifest.version,
                             key=result.signed_by, file=str(path))
            cached = self._verified[str(path)] = (key, result)
        archive = cached[1]
        if isinstance(archive, PackError):  # a fresh error: the cached one's traceback stays put
            raise PackError(str(archive), entry=str(path))
        flows = [PackFlowSource(flow.id, f"{path}!{flow.file}", archive.flow_source(flow))
                 for flow in archive.manifest.flows]
        components = [(c.runtime_manifest(), c.sha256, c.size, archive.entries[c.file])
                      for c in archive.manifest.components]
        return archive.manifest.version, flows, components

    def _digest(self, path: Path) -> tuple[str, int]:
        """sha256 and size of a component file, re-hashed only when the file changed."""
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._digests:
            self._digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._digests[key], stat.st_size

    async def _upload(self, digest: str, path: Path | bytes) -> bool:
        """Put component bytes (a file's, or from a verified `.gtpack`) in the object store
        under their digest (once)."""
        if digest in self._uploaded:
            return True
        try:
            await self._objects.get_info(digest)
        except ObjectNotFoundError:
            data = path if isinstance(path, bytes) else await asyncio.to_thread(path.read_bytes)
            if hashlib.sha256(data).hexdigest() != digest:
                log.warning("component file changed while being published; next sync retries",
                            file=str(path))
                return False
            await self._objects.put(digest, data)
            log.info("component uploaded", digest=digest[:12], size=len(data),
                     file="(.gtpack)" if isinstance(path, bytes) else str(path))
        self._uploaded.add(digest)
        return True

    async def _sync_components(self, documents: list[tuple[str, ComponentDocument | None]],
                               blobs: dict[str, Path | bytes]) -> None:
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

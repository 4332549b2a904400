"""pack-loader: reads the bundle's packs and publishes their flows to the KV flow index and
their components to the object store (bytes, by sha256) and the KV component index.

A pack is a source directory (dev mode, unsigned) or a `.gtpack` file (local, or pulled from an
OCI registry into the cache before each sync), verified (signature by a
trusted key, every entry against the SBOM and manifest) before anything of it is published.
Executors never read flows or components from disk; they watch the indexes. A pack that fails
to load or verify is refused with its error logged, and the last good version stays published.

Every revision of a pack is also written as an immutable document (pack/versions.py) so that
executors can finish conversations paused in an older one. `greentic pack deploy` asks this
service (on `greentic.admin.pack.deploy`) to serve a pack from another locator; the locator is
kept in KV and survives a restart.
"""

import asyncio
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue

from greentic.bus.subjects import PACK_DEPLOY_SUBJECT
from greentic.bus.topology import (
    COMPONENT_INDEX_BUCKET,
    COMPONENTS_OBJECT_STORE,
    FLOWS_BUCKET,
    PACK_DEPLOYMENTS_BUCKET,
    PACK_VERSIONS_BUCKET,
)
from greentic.config.bundle import Bundle
from greentic.config.settings import Settings
from greentic.errors import ConfigError, GreenticError, PackError
from greentic.flow.loader import load_flow
from greentic.pack import garbage
from greentic.pack.archive import PackArchive, PackLimits, read_pack_file
from greentic.pack.deploy import (
    DeployedComponent,
    DeployedFlow,
    Deployment,
    DeployReply,
    DeployRequest,
    decode_deploy_request,
    decode_deployment,
    deployment_key,
    encode_deploy_reply,
    encode_deployment,
)
from greentic.pack.devsource import PackFlowSource, dev_component_files, read_dev_pack
from greentic.pack.index import (
    ComponentDocument,
    FlowDocument,
    PackVersionDocument,
    component_key,
    decode_component_document,
    decode_flow_document,
    encode_component_document,
    encode_flow_document,
    flow_key,
    pack_revision,
)
from greentic.pack.keys import parse_trusted_keys
from greentic.pack.oci import OciOptions, ProgressLog
from greentic.pack.resolve import resolve_pack
from greentic.pack.sign import Trust
from greentic.pack.versions import PackVersionIndex
from greentic.types.component import ComponentManifest
from greentic.types.oci import parse_reference

log = structlog.get_logger(__name__)

PULL_RETRY_S = 5.0
"""A failed pull is tried again after this long (or GREENTIC_PACK_REFRESH_S, if shorter)."""


class PackContents(NamedTuple):
    """A pack read and checked: what `_documents` publishes and a deploy reports."""

    version: str
    flows: list[PackFlowSource]
    components: list[tuple[ComponentManifest, str, int, Path | bytes]]
    """(manifest, sha256, size, the file or the bytes)."""
    flow_versions: dict[str, str]
    revision: str


class PackLoaderService:
    name = "pack-loader"

    def __init__(self, settings: Settings, bundle: Bundle) -> None:
        self.settings = settings
        self.bundle = bundle
        self._kv: KeyValue | None = None
        self._components_kv: KeyValue | None = None
        self._objects: Any = None
        self._versions: PackVersionIndex | None = None
        self._deployments_kv: KeyValue | None = None
        self._deployments: dict[str, Deployment] = {}  # pack → deployed in place of the bundle's
        self._subscription: Subscription | None = None
        self._sync_lock = asyncio.Lock()  # the poll loop and deploy requests both sync
        self._published: dict[str, tuple[str, str]] = {}  # key → (version, revision)
        self._published_components: dict[str, bytes] = {}  # key → encoded document
        self._js: Any = None
        self._uploaded: set[str] = set()  # digests known to be in the object store
        self._collect = True  # look for unnamed component bytes after the next sync
        self.bytes_deleted = 0
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
        # oci pack id → (when last asked, last good cached .gtpack or None, whether that
        # failed, the locator asked)
        self._pulled: dict[str, tuple[float, Path | None, bool, str]] = {}
        self._stopping = asyncio.Event()
        self.publishes = 0
        self.refusals = 0
        self.deploys = 0
        self.deploy_refusals = 0

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        self._js = js
        self._kv = await js.key_value(FLOWS_BUCKET)
        self._components_kv = await js.key_value(COMPONENT_INDEX_BUCKET)
        self._objects = await js.object_store(COMPONENTS_OBJECT_STORE)
        self._versions = PackVersionIndex(await js.key_value(PACK_VERSIONS_BUCKET),
                                          self.settings.env, self.settings.pack_versions_kept)
        self._deployments_kv = await js.key_value(PACK_DEPLOYMENTS_BUCKET)
        await self._restore_deployments()
        await self.sync()
        # only a running service answers: with leader election, the leader
        self._subscription = await nc.subscribe(PACK_DEPLOY_SUBJECT, queue="pack-loader",
                                                cb=self._on_deploy)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.settings.flow_poll_s)
            except TimeoutError:
                await self.sync()

    async def stop(self) -> None:
        self._stopping.set()
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    def stats(self) -> dict[str, Any]:
        return {"flows": len(self._published), "components": len(self._published_components),
                "publishes": self.publishes, "refusals": self.refusals,
                "deploys": self.deploys, "deploy_refusals": self.deploy_refusals,
                "revisions_purged": self._versions.purged if self._versions else 0,
                "component_bytes_deleted": self.bytes_deleted}

    async def _resolve_sources(self) -> dict[str, Path | None]:
        """Every pack's local path (from a deployment's locator, else the bundle's). `oci`
        packs are pulled through the cache; a tag is asked for again every
        GREENTIC_PACK_REFRESH_S, a digest-pinned pack only once. A failed pull is logged and
        counted as a refusal, and the last good path stays (None: none yet)."""
        sources: dict[str, Path | None] = {}
        for pack_id in self.bundle.packs:
            locator, digest = self._source(pack_id)
            try:
                sources[pack_id] = await self._locate(pack_id, locator, digest, force=False)
            except PackError as exc:
                self.refusals += 1
                log.error("pack pull failed; keeping the last good version", pack=pack_id,
                          error=str(exc))
                sources[pack_id] = self._pulled[pack_id][1] if pack_id in self._pulled else None
        return sources

    async def _locate(self, pack_id: str, locator: str, digest: str, *, force: bool) -> Path:
        """A pack locator as a local path: a directory or `.gtpack` as given, or an `oci://`
        reference pulled into the cache (again when `force`, or when its tag is due)."""
        if not locator.startswith("oci://"):
            return Path(locator)
        pinned = bool(digest) or parse_reference(locator).digest is not None
        path: Path | None = None
        if pack_id in self._pulled and self._pulled[pack_id][3] == locator:
            asked, path, failed, _ = self._pulled[pack_id]
            wait = min(PULL_RETRY_S, self.settings.pack_refresh_s) if failed \
                else self.settings.pack_refresh_s
            if not force and ((pinned and path is not None and path.is_file()) or
                              time.monotonic() - asked < wait):
                if path is None:
                    raise PackError("not pulled yet (the last pull failed)", entry=locator)
                return path
        progress = ProgressLog(lambda done, total: log.info(
            "pack pull", pack=pack_id, bytes=done, total=total,
            percent=round(100 * done / total) if total else 100))
        try:
            pulled = await resolve_pack(
                locator, base_dir=self.bundle.base_dir, cache_dir=self.settings.pack_cache_dir,
                digest=digest or None, limits=self._limits, progress=progress, options=self._oci)
        except PackError:
            self._pulled[pack_id] = (time.monotonic(), path, True, locator)
            raise
        if pulled != path:
            log.info("pack pulled", pack=pack_id, oci=locator, file=str(pulled))
        self._pulled[pack_id] = (time.monotonic(), pulled, False, locator)
        return pulled

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
                locator, digest = self._source(pack_id)
                pack_path = sources[pack_id] if sources is not None else Path(locator)
                assert pack_path is not None
                pack_version, flows, components, versions, revision = \
                    self._read_pack(pack_id, pack_path, digest)
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
                        version=versions[flow.id], revision=revision)))
                for component, digest, size, _ in components:
                    key = component_key(self.settings.env, tenant_id, pack_id, component.id)
                    component_documents.append((key, ComponentDocument(
                        tenant=tenant_id, pack=pack_id, pack_version=pack_version,
                        digest=digest, size=size, manifest=component, revision=revision)))
        return documents, component_documents, blobs

    def _source(self, pack_id: str) -> tuple[str, str]:
        """Where pack `pack_id` comes from (a deployment's locator, else the bundle's path or
        `oci://` reference) and its digest pin ("" for none)."""
        deployment = self._deployments.get(pack_id)
        if deployment is not None:
            return deployment.locator, deployment.digest
        source = self.bundle.packs[pack_id]
        if source.oci is not None:
            return source.oci, source.digest or ""
        return str(self.bundle.pack_dir(pack_id)), ""

    def _read_pack(self, pack_id: str, pack_path: Path, digest: str = "") -> PackContents:
        """A pack source directory or `.gtpack`, verified and checked; raises GreenticError."""
        if digest and not pack_path.is_file():
            raise PackError(f"a digest pin needs a .gtpack file, and {pack_path} is not one",
                            entry="digest")
        if pack_path.is_file():
            pack_version, flows, components = self._signed_pack(pack_id, pack_path)
            # after verifying, which refuses an oversized file unread
            if digest and (actual := f"sha256:{self._digest(pack_path)[0]}") != digest:
                raise PackError(f"{pack_path} is {actual}, not the pinned {digest}",
                                entry="digest")
        else:
            manifest, flows = read_dev_pack(pack_path)
            pack_version = manifest.version
            components = [(component, *self._digest(path), path) for component, path
                          in dev_component_files(pack_path, manifest)]
        # refuse what executors could not run
        ids = {flow.id for flow in flows}
        versions = {flow.id: load_flow(flow.source, flow.file, pack_flows=ids).version
                    for flow in flows}
        revision = pack_revision(pack_id, pack_version, list(versions.items()),
                                 [(c.id, d, msgspec.json.encode(c)) for c, d, _, _ in components])
        return PackContents(pack_version, flows, components, versions, revision)

    async def sync(self) -> None:
        """Publish every flow whose version changed; remove flows no longer in a pack."""
        async with self._sync_lock:
            await self._sync()

    async def _sync(self) -> None:
        assert self._kv is not None
        sources = await self._resolve_sources()
        documents, component_documents, blobs = await asyncio.to_thread(self._documents, sources)
        purged = await self._record_revisions(documents, component_documents)
        await self._sync_components(component_documents, blobs)
        if self._collect or purged:
            await self._delete_unnamed_bytes({d.digest for _, d in component_documents if d})
        wanted = {key for key, _ in documents}
        for key, document in documents:
            if document is None or self._published.get(key) == (document.version,
                                                                 document.revision):
                continue
            if key not in self._published:
                try:
                    current = decode_flow_document((await self._kv.get(key)).value or b"")
                    if (current.version, current.revision) == (document.version,
                                                               document.revision):
                        self._published[key] = (document.version, document.revision)
                        continue
                except (KeyNotFoundError, msgspec.DecodeError):
                    pass
            await self._kv.put(key, encode_flow_document(document))
            self._published[key] = (document.version, document.revision)
            self.publishes += 1
            log.info("flow published", key=key, version=document.version[:12],
                     revision=document.revision)
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
            error = PackError(str(archive), entry=str(path))
            error.entry = archive.entry or str(path)  # the message names the file, entry the part
            raise error
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

    async def _delete_unnamed_bytes(self, current: set[str]) -> None:
        """After revisions were purged (and once after start, for a leader that stopped
        in between): delete component bytes no kept revision names."""
        assert self._versions is not None
        try:
            deleted = await garbage.delete_unnamed(self._js, self._versions.kv,
                                                   self._components_kv, self._objects,
                                                   keep=current, grace_s=garbage.GRACE_S)
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("looking for unnamed component bytes failed; next purge retries",
                        error=repr(exc))
            return
        self._collect = False
        self._uploaded -= set(deleted)
        self.bytes_deleted += len(deleted)

    async def _record_revisions(self, documents: list[tuple[str, FlowDocument | None]],
                                component_documents: list[tuple[str, ComponentDocument | None]]
                                ) -> bool:
        """Write each tenant's pack revision (flows + components) before it becomes current;
        True if older revisions were purged meanwhile."""
        assert self._versions is not None
        revisions: dict[tuple[str, str], PackVersionDocument] = {}
        for document in (d for _, d in documents if d is not None):
            revisions.setdefault((document.tenant, document.pack), PackVersionDocument(
                tenant=document.tenant, pack=document.pack, pack_version=document.pack_version,
                revision=document.revision, published_ms=int(time.time() * 1000), flows=[],
                components=[])).flows.append(document)
        for component in (d for _, d in component_documents if d is not None):
            found = revisions.get((component.tenant, component.pack))
            if found is not None:
                found.components.append(component)
        purged = False
        for document in revisions.values():
            purged |= bool(await self._versions.record(document))
        return purged

    async def _restore_deployments(self) -> None:
        """Serve what `greentic pack deploy` put in place of the bundle's paths (kept in KV)."""
        assert self._deployments_kv is not None
        for pack_id in self.bundle.packs:
            try:
                entry = await self._deployments_kv.get(deployment_key(self.settings.env, pack_id))
                deployment = decode_deployment(entry.value or b"")
            except KeyNotFoundError:
                continue
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("deployment record unreadable; using the bundle's path", pack=pack_id,
                          error=str(exc))
                continue
            self._deployments[pack_id] = deployment
            log.info("deployment restored", pack=pack_id, locator=deployment.locator,
                     digest=deployment.digest or None)

    def _resolve_locator(self, locator: str) -> str:
        """A deploy locator checked: `oci://…` as given (validated), else a pack source
        directory or a `.gtpack`, relative to the bundle's directory unless absolute."""
        if locator.startswith("oci://"):
            parse_reference(locator)
            return locator
        path = Path(locator).expanduser()
        if not path.is_absolute():
            path = Path(self.bundle.base_dir) / path
        path = path.resolve()
        if not path.exists():
            raise PackError(f"{path} does not exist", entry="locator")
        return str(path)

    async def deploy(self, request: DeployRequest) -> DeployReply:
        """Verify the pack at the request's locator and, if it loads, serve it from now on
        (durably); a refused deploy changes nothing."""
        assert self._deployments_kv is not None
        pack_id = request.pack
        if pack_id not in self.bundle.packs:
            self.deploy_refusals += 1
            return DeployReply(ok=False, pack=pack_id, entry="pack", error=(
                f"pack {pack_id!r} is not in the bundle (packs: "
                f"{', '.join(sorted(self.bundle.packs)) or 'none'}); tenants and channels "
                "come from the bundle, so add the pack there first"))
        async with self._sync_lock:  # no poll in between: it would read the old source
            try:
                if request.locator:
                    locator, digest = self._resolve_locator(request.locator), request.digest
                else:
                    locator, pinned = self._source(pack_id)
                    digest = request.digest or pinned
                path = await self._locate(pack_id, locator, digest, force=True)
                contents = await asyncio.to_thread(self._read_pack, pack_id, path, digest)
            except GreenticError as exc:
                self.deploy_refusals += 1
                log.error("deploy refused; keeping the last good version", pack=pack_id,
                          locator=request.locator, error=str(exc))
                return DeployReply(ok=False, pack=pack_id, error=str(exc),
                                   entry=getattr(exc, "entry", ""))
            if request.locator or request.digest:
                deployment = Deployment(pack=pack_id, locator=locator, digest=digest,
                                        deployed_ms=int(time.time() * 1000))
                await self._deployments_kv.put(deployment_key(self.settings.env, pack_id),
                                               encode_deployment(deployment))
                self._deployments[pack_id] = deployment
            await self._sync()
        self.deploys += 1
        log.info("pack deployed", pack=pack_id, version=contents.version,
                 revision=contents.revision, locator=locator, file=str(path))
        return DeployReply(
            ok=True, pack=pack_id, version=contents.version, revision=contents.revision,
            locator=locator,
            flows=[DeployedFlow(id, version) for id, version in contents.flow_versions.items()],
            components=[DeployedComponent(c.id, f"sha256:{d}", size)
                        for c, d, size, _ in contents.components])

    async def _on_deploy(self, msg: Msg) -> None:
        """One deploy request → one reply; a failure is answered, never raised."""
        try:
            reply = await self.deploy(decode_deploy_request(msg.data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            reply = DeployReply(ok=False, error=f"not a deploy request: {exc}", entry="request")
        except Exception as exc:  # KV unreachable, …: say so, keep serving
            log.exception("deploy failed")
            reply = DeployReply(ok=False, error=f"{type(exc).__name__}: {exc}")
        await msg.respond(encode_deploy_reply(reply))

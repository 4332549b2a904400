"""pack-loader: publishes the bundle's packs to the KV indexes and object store executors watch.

A sync (every GREENTIC_FLOW_POLL_S, and for each deploy): locate each pack (pack/resolve.py) →
verify it (pack/verify.py) → record each tenant's revision (pack/versions.py) → upload component
bytes, publish the component and flow indexes (pack/publish.py) → delete component bytes no
kept revision names (pack/garbage.py). A pack that fails to pull or verify is refused with its
error logged, and the last good version stays published. `greentic pack deploy` asks this
service (on `greentic.admin.pack.deploy`) to serve a pack from another locator, kept in KV
(pack/deploy.py) so that it survives a restart.
"""

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

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
from greentic.errors import GreenticError
from greentic.pack.archive import PackLimits
from greentic.pack.deploy import (
    DeploymentStore,
    DeployReply,
    DeployRequest,
    decode_deploy_request,
    deployed_reply,
    encode_deploy_reply,
    unknown_pack_reply,
)
from greentic.pack.garbage import UnnamedBytesCollector
from greentic.pack.publish import ComponentBytes, ComponentIndex, Documents, FlowIndex
from greentic.pack.resolve import PackSources
from greentic.pack.verify import PackVerifier
from greentic.pack.versions import PackVersionIndex

log = structlog.get_logger(__name__)


class PackLoaderService:
    name = "pack-loader"

    def __init__(self, settings: Settings, bundle: Bundle) -> None:
        self.settings = settings
        self.bundle = bundle
        limits = PackLimits(max_archive_bytes=settings.pack_max_bytes)
        self._verifier = PackVerifier(settings, limits)
        self._sources = PackSources(settings, bundle, limits)
        self._flows = FlowIndex()
        self._components = ComponentIndex()
        self._bytes: ComponentBytes | None = None
        self._versions: PackVersionIndex | None = None
        self._collector: UnnamedBytesCollector | None = None
        self._deployments: DeploymentStore | None = None
        self._subscription: Subscription | None = None
        self._sync_lock = asyncio.Lock()  # the poll loop and deploy requests both sync
        self._stopping = asyncio.Event()
        self._verify_refusals = 0
        self.deploys = 0
        self.deploy_refusals = 0

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        self._flows.kv = await js.key_value(FLOWS_BUCKET)
        self._components.kv = await js.key_value(COMPONENT_INDEX_BUCKET)
        objects = await js.object_store(COMPONENTS_OBJECT_STORE)
        self._bytes = ComponentBytes(objects)
        self._versions = PackVersionIndex(await js.key_value(PACK_VERSIONS_BUCKET),
                                          self.settings.env, self.settings.pack_versions_kept)
        self._collector = UnnamedBytesCollector(js, self._versions.kv, self._components.kv,
                                                objects)
        self._deployments = DeploymentStore(await js.key_value(PACK_DEPLOYMENTS_BUCKET),
                                            self.settings.env)
        self._sources.deployed.update(await self._deployments.restore(self.bundle.packs))
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

    @property
    def refusals(self) -> int:
        """Packs a sync refused: failed pulls, and packs that did not verify."""
        return self._sources.failures + self._verify_refusals

    def stats(self) -> dict[str, Any]:
        return {"flows": len(self._flows.published), "components": len(self._components.published),
                "publishes": self._flows.publishes + self._components.publishes,
                "refusals": self.refusals, "deploys": self.deploys,
                "deploy_refusals": self.deploy_refusals,
                "revisions_purged": self._versions.purged if self._versions else 0,
                "component_bytes_deleted": self._collector.deleted if self._collector else 0}

    async def sync(self) -> None:
        """Publish every flow and component that changed; withdraw those no longer in a pack."""
        async with self._sync_lock:
            await self._sync()

    async def _sync(self) -> None:
        assert self._bytes and self._versions and self._collector
        documents = await asyncio.to_thread(self._documents, await self._sources.locate_all())
        purged = await self._versions.record_revisions(documents.flows, documents.components)
        await self._components.publish(documents.components, documents.blobs, self._bytes)
        if self._collector.due or purged:
            self._bytes.forget(await self._collector.collect(documents.digests()))
        await self._flows.publish(documents.flows)

    def _documents(self, sources: Mapping[str, Path | None] | None = None) -> Documents:
        """What to publish; `sources` (from `PackSources.locate_all`) says where each pack is, a
        None one has never been pulled and is skipped (its pull failure was logged)."""
        documents = Documents([], [], {})
        for pack_id in self.bundle.packs:
            if sources is not None and sources.get(pack_id) is None:
                continue
            try:
                locator, digest = self._sources.source(pack_id)
                pack_path = sources[pack_id] if sources is not None else Path(locator)
                assert pack_path is not None
                contents = self._verifier.verify(pack_id, pack_path, digest)
            except GreenticError as exc:
                self._verify_refusals += 1
                log.error("pack refused; keeping the last good version", pack=pack_id,
                          error=str(exc))
                documents.keep(self._flows.keys_of(pack_id), self._components.keys_of(pack_id))
                continue
            documents.add_pack(self.settings.env, self.bundle, pack_id, contents)
        return documents

    async def deploy(self, request: DeployRequest) -> DeployReply:
        """Verify the pack at the request's locator and, if it loads, serve it from now on
        (durably); a refused deploy changes nothing."""
        assert self._deployments is not None
        pack_id = request.pack
        if pack_id not in self.bundle.packs:
            self.deploy_refusals += 1
            return unknown_pack_reply(pack_id, self.bundle.packs)
        async with self._sync_lock:  # no poll in between: it would read the old source
            try:
                locator, digest = self._sources.requested(pack_id, request.locator,
                                                          request.digest)
                path = await self._sources.locate(pack_id, locator, digest, force=True)
                contents = await asyncio.to_thread(self._verifier.verify, pack_id, path, digest)
            except GreenticError as exc:
                self.deploy_refusals += 1
                log.error("deploy refused; keeping the last good version", pack=pack_id,
                          locator=request.locator, error=str(exc))
                return DeployReply(ok=False, pack=pack_id, error=str(exc),
                                   entry=getattr(exc, "entry", ""))
            if request.locator or request.digest:
                self._sources.deployed[pack_id] = await self._deployments.save(
                    pack_id, locator, digest)
            await self._sync()
        self.deploys += 1
        log.info("pack deployed", pack=pack_id, version=contents.version,
                 revision=contents.revision, locator=locator, file=str(path))
        return deployed_reply(pack_id, locator, contents)

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

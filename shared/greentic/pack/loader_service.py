"""pack-loader: reads the bundle's packs and publishes their flows to the KV flow index.

Executors never read flows from disk; they watch the index. A flow that fails to load is
refused with its error logged, and the last good version stays published.
"""

import asyncio
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from greentic.bus.topology import FLOWS_BUCKET
from greentic.config.bundle import Bundle
from greentic.config.settings import Settings
from greentic.errors import GreenticError
from greentic.flow.loader import load_flow
from greentic.pack.devsource import read_dev_pack
from greentic.pack.index import FlowDocument, decode_flow_document, encode_flow_document, flow_key

log = structlog.get_logger(__name__)


class PackLoaderService:
    name = "pack-loader"

    def __init__(self, settings: Settings, bundle: Bundle) -> None:
        self.settings = settings
        self.bundle = bundle
        self._kv: KeyValue | None = None
        self._published: dict[str, str] = {}  # key → version
        self._stopping = asyncio.Event()
        self.publishes = 0
        self.refusals = 0

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        self._kv = await js.key_value(FLOWS_BUCKET)
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
        return {"flows": len(self._published), "publishes": self.publishes,
                "refusals": self.refusals}

    def _documents(self) -> list[tuple[str, FlowDocument]]:
        documents = []
        for pack_id in self.bundle.packs:
            try:
                manifest, flows = read_dev_pack(self.bundle.pack_dir(pack_id))
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
                continue
            for tenant_id, tenant in self.bundle.tenants.items():
                if pack_id not in tenant.packs:
                    continue
                for flow in flows:
                    key = flow_key(self.settings.env, tenant_id, pack_id, flow.id)
                    documents.append((key, FlowDocument(
                        tenant=tenant_id, pack=pack_id, pack_version=manifest.version,
                        flow=flow.id, file=flow.file, source=flow.source,
                        version=versions[flow.id])))
        return documents

    async def sync(self) -> None:
        """Publish every flow whose version changed; remove flows no longer in a pack."""
        assert self._kv is not None
        documents = await asyncio.to_thread(self._documents)
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

"""executor: runs the flow bound to each routed message and publishes its replies."""

import asyncio
import contextlib
import time
from typing import Any

import structlog
from nats.aio.msg import Msg

from greentic.bus import headers as h
from greentic.bus.subjects import message_subject
from greentic.bus.topology import COMPONENT_INDEX_BUCKET, COMPONENTS_OBJECT_STORE, FLOWS_BUCKET
from greentic.component import ComponentEngine, ComponentHost, EnvSecretsProvider, SecretsProvider
from greentic.config.settings import Settings
from greentic.errors import DeadLetter, FlowError, RetryLater
from greentic.flow.engine import FlowEngine, Reply
from greentic.runner.components import ComponentRegistry, component_operations
from greentic.runner.flow_registry import FlowRegistry
from greentic.service.hop import HopService, read_envelope
from greentic.state import MemoryStateStore, StateStore
from greentic.types.envelope import Envelope, encode_envelope
from greentic.types.ids import derive_id

log = structlog.get_logger(__name__)


def reply_envelopes(inbound: Envelope, replies: list[Reply]) -> list[Envelope]:
    """Outbound envelopes for a turn's replies; ids derive from the inbound id."""
    now = int(time.time() * 1000)
    return [Envelope(id=derive_id(inbound.id, index), ctx=inbound.ctx, channel=inbound.channel,
                     provider=inbound.provider, conversation=inbound.conversation,
                     direction="out", sender="bot", text=reply.text, buttons=reply.buttons,
                     reply_to=inbound.id, thread=inbound.thread, created_ms=now,
                     flow=inbound.flow)
            for index, reply in enumerate(replies)]


class ExecutorService(HopService):
    name = "executor"
    stage = "routed"

    def __init__(self, settings: Settings, state: StateStore | None = None,
                 secrets: SecretsProvider | None = None) -> None:
        super().__init__(settings)
        self.state = state if state is not None else MemoryStateStore()
        """Flow and component state; memory unless a shared backend is given."""
        self.components = ComponentRegistry(ComponentHost(
            ComponentEngine.shared(settings.component_cache_dir), self.state,
            secrets if secrets is not None else EnvSecretsProvider(),
            threads=settings.wasm_threads))
        engine = FlowEngine()
        engine.operations.update(component_operations(self.components))
        self.registry = FlowRegistry(engine)
        self._follows: list[asyncio.Task] = []

    async def prepare(self) -> None:
        kv = await self.js.key_value(FLOWS_BUCKET)
        components_kv = await self.js.key_value(COMPONENT_INDEX_BUCKET)
        objects = await self.js.object_store(COMPONENTS_OBJECT_STORE)
        self._follows = [asyncio.create_task(self.components.follow(components_kv, objects)),
                         asyncio.create_task(self.registry.follow(kv))]
        await self.components.loaded.wait()
        await self.registry.loaded.wait()

    async def stop(self) -> None:
        await super().stop()
        for task in self._follows:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.components.host.close()

    def stats(self) -> dict[str, Any]:
        return {"flows": len(self.registry), "components": len(self.components),
                "component_refusals": self.components.refusals, **super().stats()}

    async def handle(self, msg: Msg) -> None:
        """Routed message → its flow's turn → replies published (acked by the worker after)."""
        inbound = read_envelope(msg.subject, msg.data)
        if inbound.flow is None:
            raise DeadLetter("routed message carries no flow")
        prepared = self.registry.get(inbound.ctx, inbound.flow)
        if prepared is None:
            raise RetryLater(f"flow {inbound.flow.pack}/{inbound.flow.flow} is not loaded "
                             f"for tenant {inbound.ctx.tenant!r}")
        try:
            result = await self.registry.engine.run_turn(prepared, inbound)
        except FlowError as exc:
            raise DeadLetter(str(exc)) from None
        traceparent = (msg.headers or {}).get(h.TRACEPARENT)
        for reply in reply_envelopes(inbound, result.replies):
            await self.js.publish(message_subject("egress", reply.ctx, reply.channel),
                                  encode_envelope(reply),
                                  headers=h.envelope_headers(reply, traceparent))
        log.debug("turn done", msg_id=inbound.id, tenant=inbound.ctx.tenant,
                  steps=result.steps, replies=len(result.replies))

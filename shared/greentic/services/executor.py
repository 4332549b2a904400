"""executor: runs the flow bound to each routed message and publishes its replies.

Per message: wait for the conversation's turn (runner/turn_order.py) → read the session →
run the turn from its paused snapshot → compare-and-swap the new session → publish the replies
→ ack (the worker). A lost CAS race re-reads and redoes the turn; a message whose turn is
already in the session (a redelivery) is not applied again, only its replies are republished.
"""

import asyncio
import contextlib
import time
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from greentic.bus import headers as h
from greentic.bus.subjects import conversation_token, message_subject
from greentic.bus.topology import (
    COMPONENT_INDEX_BUCKET,
    COMPONENTS_OBJECT_STORE,
    FLOWS_BUCKET,
    HOPS,
    PACK_VERSIONS_BUCKET,
)
from greentic.component import ComponentEngine, ComponentHost
from greentic.config.settings import Settings
from greentic.errors import DeadLetter, FlowError, RetryLater, RevisionConflict
from greentic.flow import FlowEngine, FlowSnapshot, PreparedFlow, Reply
from greentic.flow.turn import FlowResolver
from greentic.hosting.hop import HopService, read_envelope
from greentic.runner.components import ComponentRegistry, component_operations
from greentic.runner.flow_registry import FlowRegistry
from greentic.runner.operations import state_operations
from greentic.runner.pack_versions import PackVersions
from greentic.runner.stores import Stores, open_stores
from greentic.runner.turn_order import TurnOrder
from greentic.secrets import SecretsProvider, secrets_from_settings
from greentic.session.model import APPLIED_KEPT, Session, SessionKey
from greentic.session.store import SessionStore
from greentic.state import MemoryStateStore
from greentic.types.envelope import Envelope, encode_envelope
from greentic.types.ids import derive_id

log = structlog.get_logger(__name__)

CAS_ATTEMPTS = 20


def reply_envelopes(inbound: Envelope, replies: list[Reply]) -> list[Envelope]:
    """Outbound envelopes for a turn's replies; ids derive from the inbound id."""
    now = int(time.time() * 1000)
    return [Envelope(id=derive_id(inbound.id, index), ctx=inbound.ctx, channel=inbound.channel,
                     provider=inbound.provider, conversation=inbound.conversation,
                     direction="out", sender="bot", text=reply.text, buttons=reply.buttons,
                     reply_to=inbound.id, thread=inbound.thread, created_ms=now,
                     flow=inbound.flow, reply_target=inbound.reply_target)
            for index, reply in enumerate(replies)]


def resume_point(session: Session, prepared: PreparedFlow,
                 resolve: FlowResolver | None = None) -> FlowSnapshot | None:
    """The session's paused snapshot if it belongs to this flow's pack (a flow.goto may have
    moved it to another flow of the pack) and its node still exists."""
    if session.snapshot is None:
        return None
    snapshot = msgspec.convert(session.snapshot, FlowSnapshot)
    if snapshot.pack != prepared.pack:
        return None  # the channel was bound to another pack meanwhile: start afresh
    paused_in = prepared if snapshot.flow == prepared.flow.id else \
        resolve(snapshot.flow) if resolve is not None else None
    if paused_in is None or snapshot.node not in paused_in.flow.nodes:
        log.warning("paused flow or node gone from the new version; starting over",
                    flow=snapshot.flow, node=snapshot.node)
        return None
    return snapshot


class TurnApplier:
    """Applies one message's turn to its session exactly once (CAS + redelivery detection).

    A conversation paused in an older pack revision than `prepared`'s resumes on that revision
    (`versions`), flows and components alike, while the revision is kept."""

    def __init__(self, engine: FlowEngine, sessions: SessionStore, epoch: str,
                 versions: PackVersions | None = None) -> None:
        self.engine = engine
        self.sessions = sessions
        self.epoch = epoch
        self.versions = versions
        self.conflicts = 0
        self.redeliveries = 0
        self.pinned_turns = 0

    async def _pinned(self, session: Session, prepared: PreparedFlow, inbound: Envelope
                      ) -> tuple[PreparedFlow, FlowResolver] | None:
        """The paused flow of the session's older pack revision, and that revision's resolver;
        None when the session is on `prepared`'s revision (no lookup at all) or that revision
        is gone."""
        snapshot = session.snapshot
        if self.versions is None or not isinstance(snapshot, dict):
            return None
        revision, pack = snapshot.get("revision"), snapshot.get("pack")
        if not revision or revision == prepared.revision or pack != prepared.pack:
            return None
        pinned = await self.versions.get(inbound.ctx, prepared.pack, revision)
        paused_in = pinned.flows.get(snapshot.get("flow", "")) if pinned is not None else None
        if pinned is None or paused_in is None:
            return None
        self.pinned_turns += 1
        return paused_in, pinned.flows.get

    def _applied(self, session: Session, inbound: Envelope, seq: int) -> bool:
        if inbound.id in session.applied:
            return True
        return bool(seq) and session.routed_epoch == self.epoch and seq <= session.routed_seq

    async def apply(self, key: SessionKey, prepared: PreparedFlow, inbound: Envelope,
                    seq: int, resolve: FlowResolver | None = None) -> list[Reply]:
        """The turn's replies; the session holds its effect when this returns."""
        for _attempt in range(CAS_ATTEMPTS):
            found = await self.sessions.get(key)
            session, revision = found if found is not None else (Session(), None)
            if self._applied(session, inbound, seq):
                self.redeliveries += 1
                if session.applied and session.applied[-1] == inbound.id:
                    return msgspec.convert(session.replies, list[Reply])
                return []  # an older turn: acked after its replies went out, nothing to redo
            run_on, run_resolve = await self._pinned(session, prepared, inbound) or \
                (prepared, resolve)
            try:
                result = await self.engine.run_turn(
                    run_on, inbound, resume_point(session, run_on, run_resolve), run_resolve,
                    session={"turn": session.turns + 1, "key": key.path()})
            except FlowError as exc:
                raise DeadLetter(str(exc)) from None
            now = int(time.time() * 1000)
            updated = msgspec.structs.replace(
                session, turns=session.turns + 1,
                snapshot=msgspec.to_builtins(result.paused) if result.paused else None,
                applied=[*session.applied, inbound.id][-APPLIED_KEPT:],
                replies=msgspec.to_builtins(result.replies), created_ms=session.created_ms or now,
                updated_ms=now, routed_seq=seq, routed_epoch=self.epoch)
            try:
                if revision is None:
                    await self.sessions.create(key, updated)
                else:
                    await self.sessions.update(key, updated, revision)
            except RevisionConflict:
                self.conflicts += 1
                log.info("session written meanwhile; redoing the turn", key=key.path())
                continue
            return result.replies
        raise RetryLater(f"session {key.path()} kept changing during {CAS_ATTEMPTS} attempts")


class ExecutorService(HopService):
    name = "executor"
    stage = "routed"
    ack_sync = True  # the next message of the conversation may start once the ack is in
    chain_conversations = False  # TurnOrder keeps each conversation in order, across processes

    def __init__(self, settings: Settings, secrets: SecretsProvider | None = None) -> None:
        super().__init__(settings)
        self.max_in_flight = settings.executor_max_in_flight
        # a turn waiting for its conversation's head stays alive as long as it may wait
        self.keepalive_limit_s = max(self.keepalive_limit_s,
                                     _turn_give_up_s(settings) + settings.ack_wait_s)
        self.components = ComponentRegistry(ComponentHost(
            ComponentEngine.shared(settings.component_cache_dir, settings.wasm_fuel),
            MemoryStateStore(),
            secrets if secrets is not None else secrets_from_settings(settings),
            threads=settings.wasm_threads))
        engine = FlowEngine()
        self.versions = PackVersions(engine, self.components, settings.pinned_versions_cached)
        engine.operations.update(component_operations(self.components,
                                                      self.versions.pinned_components))
        self.registry = FlowRegistry(engine)
        self._follows: list[asyncio.Task] = []
        self._stores: Stores | None = None
        self._order: TurnOrder | None = None
        self._applier: TurnApplier | None = None

    async def prepare(self) -> None:
        # open the session backend first: a misconfigured one stops the service at start
        self._stores = await open_stores(self.settings, self.js)
        self.registry.engine.operations.update(state_operations(self._stores.state))
        self.components.host.state = self._stores.state  # components share the flows' store
        routed = HOPS["routed"].stream
        epoch = str((await self.js.stream_info(routed)).created or "")
        self._applier = TurnApplier(self.registry.engine, self._stores.sessions, epoch,
                                    self.versions)
        self._order = TurnOrder(self.nc, self.js, routed, ack_wait_s=self.settings.ack_wait_s,
                                give_up_s=_turn_give_up_s(self.settings))
        await self._order.start()
        kv = await self.js.key_value(FLOWS_BUCKET)
        components_kv = await self.js.key_value(COMPONENT_INDEX_BUCKET)
        objects = await self.js.object_store(COMPONENTS_OBJECT_STORE)
        self.versions.attach(await self.js.key_value(PACK_VERSIONS_BUCKET), objects)
        self._follows = [asyncio.create_task(self.components.follow(components_kv, objects)),
                         asyncio.create_task(self.registry.follow(kv))]
        await self.components.loaded.wait()
        await self.registry.loaded.wait()

    async def stop(self) -> None:
        if self._order is not None:
            self._order.stopping = True
        await super().stop()
        if self._order is not None:
            await self._order.stop()
        for task in self._follows:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.components.host.close()
        if self._stores is not None:
            await self._stores.close()

    def stats(self) -> dict[str, Any]:
        sessions = {"session_conflicts": self._applier.conflicts,
                    "redeliveries_recognised": self._applier.redeliveries,
                    "pinned_turns": self._applier.pinned_turns} if self._applier else {}
        versions = {"pinned_revision_loads": self.versions.loads,
                    "pinned_revisions_gone": self.versions.gone,
                    "pinned_revision_last_load_ms": round(self.versions.last_load_ms, 1)}
        waits = {"turn_waits": self._order.waits} if self._order else {}
        return {"flows": len(self.registry), "components": len(self.components),
                "component_refusals": self.components.refusals,
                "session_backend": self.settings.session_backend,
                **sessions, **versions, **waits, **super().stats()}

    async def on_acked(self, msg: Msg) -> None:
        if self._order is not None:
            await self._order.released(msg)

    async def handle(self, msg: Msg) -> None:
        """Routed message → its turn applied to the session → replies published (acked by the
        worker after)."""
        assert self._order is not None and self._applier is not None
        inbound = read_envelope(msg.subject, msg.data)
        if inbound.flow is None:
            raise DeadLetter("routed message carries no flow")
        prepared = self.registry.get(inbound.ctx, inbound.flow)
        if prepared is None:
            raise RetryLater(f"flow {inbound.flow.pack}/{inbound.flow.flow} is not loaded "
                             f"for tenant {inbound.ctx.tenant!r}")
        await self._order.wait_for_turn(msg)
        key = SessionKey(inbound.ctx, inbound.channel, conversation_token(inbound.conversation))
        replies = await self._applier.apply(
            key, prepared, inbound, msg.metadata.sequence.stream,
            self.registry.resolver(inbound.ctx, inbound.flow.pack))
        for reply in reply_envelopes(inbound, replies):
            await self.js.publish(message_subject("egress", reply.ctx, reply.channel),
                                  encode_envelope(reply),
                                  headers=h.envelope_headers(reply))
        log.debug("turn done", msg_id=inbound.id, tenant=inbound.ctx.tenant,
                  replies=len(replies))


def _turn_give_up_s(settings: Settings) -> float:
    """How long a conversation's head may stay pending before the next message runs anyway:
    every delivery of the head timed out, plus slack."""
    return settings.ack_wait_s * (settings.max_deliver + 2) + 30


__all__ = ["ExecutorService", "TurnApplier", "reply_envelopes", "resume_point"]

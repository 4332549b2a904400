"""executor: runs the flow bound to each routed message and publishes its replies.

Each replica owns a share of the routed hop's partitions (runner/partitions.py) and reads each
owned partition's consumer, one conversation's messages after one another. Per message: the
session (from memory if this replica wrote it last, else the store) → the turn from its paused
snapshot → compare-and-swap the new session → publish the replies → ack. A lost CAS race
re-reads and redoes the turn; a message whose turn is already in the session (a redelivery) is
not applied again, only its replies are republished.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from greentic.bus import headers as h
from greentic.bus.subjects import conversation_token, message_subject, partition_of
from greentic.bus.topology import (
    COMPONENT_INDEX_BUCKET,
    COMPONENTS_OBJECT_STORE,
    EXECUTOR_LEASES_BUCKET,
    FLOWS_BUCKET,
    HOPS,
    PACK_VERSIONS_BUCKET,
    Hop,
    drop_shared_executor_consumer,
    ensure_bucket,
    partition_consumer,
    renew_partition_consumer,
)
from greentic.bus.worker import HopWorker
from greentic.component import ComponentEngine, ComponentHost
from greentic.config.settings import Settings
from greentic.errors import DeadLetter, FlowError, RetryLater, RevisionConflict
from greentic.flow import FlowEngine, FlowSnapshot, PreparedFlow, Reply
from greentic.flow.turn import FlowResolver
from greentic.hosting.components import ComponentRegistry
from greentic.hosting.hop import read_envelope, report_lag, set_lag
from greentic.runner.components import component_operations
from greentic.runner.flow_registry import FlowRegistry
from greentic.runner.operations import state_operations
from greentic.runner.pack_versions import PackVersions
from greentic.runner.partitions import PartitionLeases
from greentic.runner.session_cache import SessionCache
from greentic.runner.stores import Stores, open_stores
from greentic.secrets import SecretsProvider, secrets_from_settings
from greentic.session.model import APPLIED_KEPT, Session, SessionKey
from greentic.session.store import SessionStore
from greentic.state import MemoryStateStore
from greentic.types.envelope import Envelope, encode_envelope
from greentic.types.ids import derive_id

log = structlog.get_logger(__name__)

CAS_ATTEMPTS = 20
REPLY_PUBLISH_TIMEOUT_S = 10.0


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
                 versions: PackVersions | None = None, cache: SessionCache | None = None
                 ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.epoch = epoch
        self.versions = versions
        self.cache = cache if cache is not None else SessionCache(0)
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
                    seq: int, resolve: FlowResolver | None = None, *, partition: int = 0,
                    owns: Callable[[], bool] | None = None) -> list[Reply]:
        """The turn's replies; the session holds its effect when this returns. `owns` says
        whether this replica still owns the conversation's partition: checked before the
        session is written (another owner may have taken over while the turn ran)."""
        for _attempt in range(CAS_ATTEMPTS):
            cached = self.cache.get(key)
            found = cached if cached is not None else await self.sessions.get(key)
            session, revision = found if found is not None else (Session(), None)
            if cached is not None and self._applied(session, inbound, seq):
                self.cache.forget(key)  # a redelivery: ask the store, not the memory
                continue
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
            if owns is not None and not owns():
                raise RetryLater("the conversation's partition moved to another replica")
            try:
                if revision is None:
                    written = await self.sessions.create(key, updated)
                else:
                    written = await self.sessions.update(key, updated, revision)
            except RevisionConflict:
                self.conflicts += 1
                self.cache.forget(key)
                log.info("session written meanwhile; redoing the turn", key=key.path())
                continue
            self.cache.put(key, partition, updated, written)
            return result.replies
        raise RetryLater(f"session {key.path()} kept changing during {CAS_ATTEMPTS} attempts")


class ExecutorService:
    name = "executor"

    def __init__(self, settings: Settings, secrets: SecretsProvider | None = None) -> None:
        self.settings = settings
        self.components = ComponentRegistry(ComponentHost(
            ComponentEngine.shared(settings.component_cache_dir, settings.wasm_fuel),
            MemoryStateStore(),
            secrets if secrets is not None else secrets_from_settings(settings),
            threads=settings.wasm_threads), worlds=frozenset({"seed", "node", "mcp"}))
        engine = FlowEngine()
        self.versions = PackVersions(engine, self.components, settings.pinned_versions_cached)
        engine.operations.update(component_operations(self.components,
                                                      self.versions.pinned_components))
        self.registry = FlowRegistry(engine)
        self.cache = SessionCache(settings.session_cache)
        self._follows: list[asyncio.Task] = []
        self._stores: Stores | None = None
        self._applier: TurnApplier | None = None
        self._leases: PartitionLeases | None = None
        self._workers: dict[int, tuple[HopWorker, asyncio.Task[None]]] = {}
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._running: asyncio.Event | None = None

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "start() first"
        return self._js

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        self._nc, self._js = nc, js
        # open the session backend first: a misconfigured one stops the service at start
        self._stores = await open_stores(self.settings, js)
        self.registry.engine.operations.update(state_operations(self._stores.state))
        self.components.host.state = self._stores.state  # components share the flows' store
        await drop_shared_executor_consumer(js)
        epoch = str((await js.stream_info(HOPS["routed"].stream)).created or "")
        self._applier = TurnApplier(self.registry.engine, self._stores.sessions, epoch,
                                    self.versions, self.cache)
        kv = await js.key_value(FLOWS_BUCKET)
        components_kv = await js.key_value(COMPONENT_INDEX_BUCKET)
        objects = await js.object_store(COMPONENTS_OBJECT_STORE)
        self.versions.attach(await js.key_value(PACK_VERSIONS_BUCKET), objects)
        self._follows = [asyncio.create_task(self.components.follow(components_kv, objects)),
                         asyncio.create_task(self.registry.follow(kv))]
        await self.components.loaded.wait()
        await self.registry.loaded.wait()
        leases = await ensure_bucket(js, EXECUTOR_LEASES_BUCKET, self.settings.partition_lease_s,
                                     replicas=self.settings.nats_replicas)
        self._leases = PartitionLeases(leases, self.settings.partitions,
                                       self.settings.partition_lease_s, self._own, self._disown)

    async def run(self) -> None:
        assert self._leases is not None
        self._running = asyncio.Event()
        lag = asyncio.create_task(report_lag(self.js, lambda: [
            partition_hop(partition) for partition in self._workers]))
        try:
            await self._leases.run()
        finally:
            lag.cancel()
            self._running.set()

    async def stop(self) -> None:
        """Hand every partition on once its turns are done, then stop."""
        if self._leases is not None:
            self._leases.stop()
            if self._running is not None:
                await self._running.wait()  # run() hands every partition on as it ends
        for task in self._follows:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.components.host.close()
        if self._stores is not None:
            await self._stores.close()

    async def _own(self, partition: int) -> None:
        """A partition is this replica's now: read it from a fresh consumer."""
        consumer = await renew_partition_consumer(
            self.js, partition, ack_wait_s=self.settings.ack_wait_s,
            max_deliver=self.settings.max_deliver)
        hop = partition_hop(partition)
        set_lag(hop, consumer.num_pending or 0)
        assert self._leases is not None
        leases = self._leases
        worker = HopWorker(self.js, hop, lambda msg: self.handle(partition, msg),
                           max_deliver=self.settings.max_deliver, batch=self.settings.fetch_batch,
                           ack_wait_s=self.settings.ack_wait_s,
                           max_in_flight=self.settings.executor_max_in_flight,
                           may_fetch=lambda: leases.holds(partition))
        self._workers[partition] = (worker, asyncio.create_task(worker.run()))

    async def _disown(self, partition: int) -> None:
        """Finish the partition's turns in hand (a lost one's are refused), forget its sessions."""
        found = self._workers.get(partition)
        if found is not None:
            worker, task = found
            await worker.stop()
            with contextlib.suppress(Exception):
                await task
            del self._workers[partition]
        self.cache.drop_partition(partition)
        set_lag(partition_hop(partition), 0)

    def stats(self) -> dict[str, Any]:
        sessions = {"session_conflicts": self._applier.conflicts,
                    "redeliveries_recognised": self._applier.redeliveries,
                    "pinned_turns": self._applier.pinned_turns} if self._applier else {}
        versions = {"pinned_revision_loads": self.versions.loads,
                    "pinned_revisions_gone": self.versions.gone,
                    "pinned_revision_last_load_ms": round(self.versions.last_load_ms, 1)}
        leases = {"member": self._leases.member, "partitions": sorted(self._workers),
                  "partitions_taken": self._leases.takeovers,
                  "partitions_handed_on": self._leases.handovers} if self._leases else {}
        workers: dict[str, int] = {}
        for worker, _ in self._workers.values():
            for name, value in worker.stats().items():
                workers[name] = workers.get(name, 0) + value
        return {"flows": len(self.registry), "components": len(self.components),
                "component_refusals": self.components.refusals,
                "session_backend": self.settings.session_backend,
                "session_cache": len(self.cache), "session_cache_hits": self.cache.hits,
                **sessions, **versions, **leases, **workers}

    async def handle(self, partition: int, msg: Msg) -> None:
        """Routed message → its turn applied to the session → replies published (acked by the
        worker after)."""
        assert self._applier is not None and self._leases is not None
        leases = self._leases
        if not leases.holds(partition):
            raise RetryLater(f"partition {partition} is not this replica's any more")
        started_ns = time.time_ns()
        inbound = read_envelope(msg.subject, msg.data)
        if inbound.flow is None:
            raise DeadLetter("routed message carries no flow")
        key = SessionKey(inbound.ctx, inbound.channel, conversation_token(inbound.conversation))
        if partition_of(key.ctx, key.channel, key.conversation,
                        self.settings.partitions) != partition:
            raise DeadLetter(f"conversation routed to partition {partition}, not its own")
        prepared = self.registry.get(inbound.ctx, inbound.flow)
        if prepared is None:
            raise RetryLater(f"flow {inbound.flow.pack}/{inbound.flow.flow} is not loaded "
                             f"for tenant {inbound.ctx.tenant!r}")
        replies = await self._applier.apply(
            key, prepared, inbound, msg.metadata.sequence.stream,
            self.registry.resolver(inbound.ctx, inbound.flow.pack), partition=partition,
            owns=lambda: leases.holds(partition))
        await self._publish(reply_envelopes(inbound, replies))
        log.debug("turn done", msg_id=inbound.id, conversation=key.path(), partition=partition,
                  replies=len(replies), started_ns=started_ns, ended_ns=time.time_ns())

    async def _publish(self, replies: list[Envelope]) -> None:
        """Every reply of a turn, in order on one connection, then all their acks at once."""
        acks = [await self.js.publish_async(message_subject("egress", reply.ctx, reply.channel),
                                            encode_envelope(reply),
                                            headers=h.envelope_headers(reply))
                for reply in replies]
        if acks:
            await asyncio.wait_for(asyncio.gather(*acks), REPLY_PUBLISH_TIMEOUT_S)


def partition_hop(partition: int) -> Hop:
    """The routed hop as one partition's owner reads it."""
    return Hop("routed", HOPS["routed"].stream, partition_consumer(partition))


__all__ = ["ExecutorService", "TurnApplier", "reply_envelopes", "resume_point"]

"""Leader election for pack-loader replicas on a Kubernetes `coordination.k8s.io/v1` Lease.

Several pack-loader replicas may run (a rollout, or replicas > 1 for availability); only the
leader publishes pack updates. The algorithm is client-go's: a candidate takes the Lease when
nobody holds it or when its holder has not renewed it for `lease_duration_s` *as observed on
the candidate's own clock* (no clock comparison across nodes); every write is a replace
carrying the `resourceVersion` just read, so of two candidates racing for a free Lease the API
server lets exactly one win (409 Conflict for the other). A leader that cannot renew within
`renew_deadline_s` (shorter than the lease duration) stops leading before anyone else may
start. Outside a cluster (or with GREENTIC_LEADER_ELECTION=off) a process leads alone.

The kubernetes client is synchronous; its calls run in a worker thread with a request timeout.
"""

import asyncio
import contextlib
import datetime
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import structlog
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from greentic.config.settings import Settings
from greentic.errors import ConfigError

log = structlog.get_logger(__name__)

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _now() -> datetime.datetime:
    # MicroTime is parsed with exactly six fractional digits, which isoformat() omits when
    # the microsecond is 0
    now = datetime.datetime.now(datetime.UTC)
    return now if now.microsecond else now.replace(microsecond=1)


class LeaseElector:
    """One candidate in the election for one Lease."""

    def __init__(self, api: k8s.CoordinationV1Api, *, name: str, namespace: str, identity: str,
                 lease_duration_s: float = 15.0, renew_deadline_s: float | None = None,
                 retry_period_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s or lease_duration_s * 2 / 3
        self.retry_period_s = retry_period_s or lease_duration_s / 7.5
        if not self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ConfigError("leader election needs retry period < renew deadline < lease "
                              f"duration, not {self.retry_period_s:g} / "
                              f"{self.renew_deadline_s:g} / {self.lease_duration_s:g} s")
        self.clock = clock
        self.transitions = 0  # times this candidate became leader
        self._renewed_at: float | None = None  # clock() before the last successful write
        self._observed: tuple[str, str] | None = None  # (holder, resourceVersion) last seen
        self._observed_at = 0.0
        self._changed = asyncio.Event()

    def is_leader(self) -> bool:
        """True while this candidate holds the Lease and its last renewal is recent enough."""
        return (self._renewed_at is not None
                and self.clock() < self._renewed_at + self.renew_deadline_s)

    async def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        timeout = self.retry_period_s
        return await asyncio.wait_for(
            asyncio.to_thread(method, *args, _request_timeout=timeout), timeout + 1)

    def _spec(self, acquire_time: datetime.datetime, transitions: int) -> k8s.V1LeaseSpec:
        return k8s.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.lease_duration_s)),
            acquire_time=acquire_time, renew_time=_now(), lease_transitions=transitions)

    async def try_acquire_or_renew(self) -> bool:
        """One round: create, take over or renew the Lease; True if this candidate leads."""
        started = self.clock()
        was_leader = self.is_leader()
        try:
            lease = await self._call(self.api.read_namespaced_lease, self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=self.name,
                                                         namespace=self.namespace),
                               spec=self._spec(_now(), 0))
            try:
                await self._call(self.api.create_namespaced_lease, self.namespace, body)
            except ApiException as exc:
                if exc.status == 409:  # another candidate created it first
                    return self._follow()
                raise
            return self._lead(started, was_leader)
        spec = lease.spec or k8s.V1LeaseSpec()
        holder = spec.holder_identity or ""
        observed = (holder, lease.metadata.resource_version or "")
        if observed != self._observed:
            self._observed, self._observed_at = observed, self.clock()
        duration = spec.lease_duration_seconds or self.lease_duration_s
        if holder and holder != self.identity and self.clock() < self._observed_at + duration:
            return self._follow()
        if holder == self.identity and spec.acquire_time is not None:
            lease.spec = self._spec(spec.acquire_time, spec.lease_transitions or 0)
        else:
            lease.spec = self._spec(_now(), (spec.lease_transitions or 0) + 1)
        try:
            # the resourceVersion read above makes this a compare-and-swap
            await self._call(self.api.replace_namespaced_lease, self.name, self.namespace, lease)
        except ApiException as exc:
            if exc.status == 409:  # someone wrote it since we read it
                return self._follow()
            raise
        return self._lead(started, was_leader)

    def _lead(self, started: float, was_leader: bool) -> bool:
        self._renewed_at = started
        if not was_leader:
            self.transitions += 1
            log.info("leader elected", lease=self.name, identity=self.identity)
            self._changed.set()
        return True

    def _follow(self) -> bool:
        if self._renewed_at is not None:
            log.warning("leadership lost", lease=self.name, identity=self.identity)
            self._renewed_at = None
            self._changed.set()
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Campaign and renew every retry period until `stop` is set; errors are retried."""
        while not stop.is_set():
            if self._renewed_at is not None and not self.is_leader():
                self._follow()  # not renewed within the deadline: step down before anyone starts
            try:
                await self.try_acquire_or_renew()
            except Exception as exc:
                # the API server may be unreachable for a while: keep leading until the renew
                # deadline passes (checked above), retry every period
                log.warning("lease not renewed", lease=self.name, error=str(exc)[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._next_wait())

    def _next_wait(self) -> float:
        if self._renewed_at is None:
            return self.retry_period_s
        # wake up at the deadline even if a renewal is still pending, to step down on time
        return max(0.0, min(self.retry_period_s,
                            self._renewed_at + self.renew_deadline_s - self.clock()))

    def wake(self) -> None:
        """Wake whoever waits in `changed()` (e.g. to notice a stop request)."""
        self._changed.set()

    async def changed(self) -> None:
        """Wait until this candidate gains or loses leadership."""
        await self._changed.wait()
        self._changed.clear()

    async def release(self) -> None:
        """Give the Lease up at once (on shutdown) so a follower need not wait it out."""
        if self._renewed_at is None:
            return
        self._renewed_at = None
        try:
            lease = await self._call(self.api.read_namespaced_lease, self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _now()
            await self._call(self.api.replace_namespaced_lease, self.name, self.namespace, lease)
            log.info("lease released", lease=self.name, identity=self.identity)
        except (ApiException, OSError, TimeoutError) as exc:
            log.warning("lease not released; followers wait for it to expire", error=str(exc))


class Service(Protocol):
    """The service shape of `greentic.hosting.lifecycle` (not imported: it is a higher layer)."""

    name: str

    async def start(self, nc: Any, js: Any) -> None: ...
    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class LeaderOnly:
    """Runs a service only while this process leads: a fresh instance on each election, stopped
    (drained) as soon as leadership is lost. Followers stay ready and idle."""

    def __init__(self, build: Callable[[], Service], elector: LeaseElector, name: str) -> None:
        self.name = name
        self._build = build
        self.elector = elector
        self._inner: Service | None = None
        self._conn: tuple[Any, Any] | None = None
        self._stopping = asyncio.Event()
        self._campaign: asyncio.Task[None] | None = None

    async def start(self, nc: Any, js: Any) -> None:
        self._conn = (nc, js)
        self._campaign = asyncio.create_task(self.elector.run(self._stopping))

    async def run(self) -> None:
        assert self._conn is not None
        while not self._stopping.is_set():
            if not self.elector.is_leader():
                await self._until(self.elector.changed())
                continue
            inner = self._inner = self._build()
            await inner.start(*self._conn)
            work = asyncio.create_task(inner.run())
            while self.elector.is_leader() and not self._stopping.is_set() and not work.done():
                await self._until(self.elector.changed(), work)
            if work.done():
                work.result()  # a crash ends the process, as without election
            await inner.stop()
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            self._inner = None

    async def _until(self, *waits: Any) -> None:
        """Wait for any of `waits`, or for stop()."""
        tasks = {asyncio.ensure_future(w) for w in (*waits, self._stopping.wait())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                if not task.done() or task.cancelled():
                    task.cancel()

    async def stop(self) -> None:
        self._stopping.set()
        self.elector.wake()
        if self._inner is not None:
            await self._inner.stop()
        if self._campaign is not None:
            with contextlib.suppress(Exception):
                await self._campaign
        await self.elector.release()

    def stats(self) -> dict[str, Any]:
        inner = self._inner.stats() if self._inner is not None else {}
        return {"leader": self.elector.is_leader(), "lease": self.elector.name,
                "elections_won": self.elector.transitions, **inner}


def in_cluster(environ: dict[str, str] | None = None) -> bool:
    """True inside a Kubernetes pod (the kubelet sets KUBERNETES_SERVICE_HOST)."""
    return bool((os.environ if environ is None else environ).get("KUBERNETES_SERVICE_HOST"))


def election_wanted(settings: Settings, environ: dict[str, str] | None = None) -> bool:
    """Whether GREENTIC_LEADER_ELECTION (auto/lease/off) asks for a Lease here."""
    return settings.leader_election == "lease" or (
        settings.leader_election == "auto" and in_cluster(environ))


def candidate_identity() -> str:
    """Pod name (the hostname) plus a random suffix: a restarted container is a new candidate."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def coordination_api() -> k8s.CoordinationV1Api:
    """The Lease API with the pod's service account, else the local kubeconfig."""
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        try:
            k8s_config.load_kube_config()
        except (k8s_config.ConfigException, OSError) as exc:
            raise ConfigError("GREENTIC_LEADER_ELECTION=lease: no in-cluster service account "
                              f"and no kubeconfig ({exc}); use `off` outside Kubernetes") from None
    return k8s.CoordinationV1Api()


def lease_namespace(settings: Settings) -> str:
    """GREENTIC_LEASE_NAMESPACE, else the pod's namespace, else `default`."""
    if settings.lease_namespace:
        return settings.lease_namespace
    try:
        return NAMESPACE_FILE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def leader_elected(settings: Settings, build: Callable[[], Service], name: str) -> Service:
    """`build()` itself when no election is wanted, else a LeaderOnly wrapper around it."""
    if not election_wanted(settings):
        return build()
    elector = LeaseElector(coordination_api(), name=settings.lease_name,
                           namespace=lease_namespace(settings), identity=candidate_identity(),
                           lease_duration_s=settings.lease_duration_s)
    return LeaderOnly(build, elector, name)

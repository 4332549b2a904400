"""Pack-loader leader election on a Lease, against a stand-in Lease API (tests/lease_api.py)."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client as k8s

from greentic.config.settings import load_settings
from greentic.pack.leader import LeaderOnly, LeaseElector, election_wanted, leader_elected
from tests.lease_api import LeaseApi

NS, NAME = "greentic", "greentic-pack-loader"
TIMING = dict(lease_duration_s=2.0, renew_deadline_s=1.2, retry_period_s=0.2)


@pytest.fixture
async def api() -> AsyncIterator[LeaseApi]:
    async with LeaseApi() as server:
        yield server


def candidate(api: LeaseApi, identity: str) -> LeaseElector:
    api_client = k8s.ApiClient(k8s.Configuration(host=api.url))
    return LeaseElector(k8s.CoordinationV1Api(api_client), name=NAME, namespace=NS,
                        identity=identity, **TIMING)


async def wait_for(predicate: Any, within_s: float) -> float:
    """Seconds until `predicate()` held; fails after `within_s`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < within_s, "condition not reached in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


class Campaign:
    """A candidate campaigning in the background, as a pack-loader replica does."""

    def __init__(self, elector: LeaseElector) -> None:
        self.elector = elector
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(elector.run(self.stop))

    async def crash(self) -> None:
        """Stop renewing without releasing: a killed pod or a network partition."""
        async with asyncio.timeout(10):
            while not self.task.done():  # 3.11's wait_for can swallow a cancel that races
                self.task.cancel()       # its inner call finishing: cancel until it ends
                await asyncio.sleep(0.01)
        await asyncio.gather(self.task, return_exceptions=True)

    async def shut_down(self) -> None:
        self.stop.set()
        await self.task
        await self.elector.release()


class TestElection:
    async def test_two_candidates_racing_for_a_free_lease_yield_one_leader(self,
                                                                           api: LeaseApi) -> None:
        """Both see no Lease and create it at once; the server lets only one create win."""
        a, b = candidate(api, "a"), candidate(api, "b")
        api.read_barrier = asyncio.Barrier(2)  # both read "no Lease" before either writes
        won = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
        api.read_barrier = None
        assert sorted(won) == [False, True]
        assert api.holder(NS, NAME) == ("a" if won[0] else "b")
        assert api.conflicts == 1

    async def test_a_takeover_based_on_a_stale_read_loses(self, api: LeaseApi) -> None:
        """Between a candidate's read and its write someone else takes the Lease: the write
        carries the old resourceVersion, is refused, and the candidate does not lead."""
        old = candidate(api, "old")
        assert await old.try_acquire_or_renew()
        await old.release()  # free: the next reader may take it at once
        sync_api = k8s.CoordinationV1Api(k8s.ApiClient(k8s.Configuration(host=api.url)))

        class SomeoneWritesAfterTheRead(k8s.CoordinationV1Api):
            def read_namespaced_lease(self, *args: Any, **kwargs: Any) -> Any:
                lease = super().read_namespaced_lease(*args, **kwargs)
                other = sync_api.read_namespaced_lease(NAME, NS)
                other.spec.holder_identity = "intruder"
                sync_api.replace_namespaced_lease(NAME, NS, other)
                return lease

        late = candidate(api, "late")
        late.api = SomeoneWritesAfterTheRead(late.api.api_client)
        assert not await late.try_acquire_or_renew()
        assert not late.is_leader()
        assert api.holder(NS, NAME) == "intruder"
        assert api.conflicts == 1

    async def test_a_stale_replace_is_refused_so_only_one_takes_over(self,
                                                                     api: LeaseApi) -> None:
        """Two followers see the same expired Lease and both replace it; the resourceVersion
        they read lets exactly one through."""
        old = candidate(api, "old")
        assert await old.try_acquire_or_renew()
        a, b = candidate(api, "a"), candidate(api, "b")
        assert not await a.try_acquire_or_renew() and not await b.try_acquire_or_renew()
        await asyncio.sleep(TIMING["lease_duration_s"] + 0.1)  # old never renews
        won = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
        assert sorted(won) == [False, True]
        assert api.holder(NS, NAME) in {"a", "b"}
        assert api.leases[(NS, NAME)]["spec"]["leaseTransitions"] == 1

    async def test_only_one_leads_and_the_other_takes_over_after_the_holder_stops_renewing(
            self, api: LeaseApi) -> None:
        """Never two leaders at once; takeover waits the lease duration out."""
        first, second = Campaign(candidate(api, "first")), Campaign(candidate(api, "second"))
        await wait_for(lambda: first.elector.is_leader() or second.elector.is_leader(), 3)
        leader, follower = (first, second) if first.elector.is_leader() else (second, first)
        for _ in range(25):  # 1 s of renewals: leadership stays put, never doubled
            assert leader.elector.is_leader() and not follower.elector.is_leader()
            await asyncio.sleep(0.04)
        holder = api.holder(NS, NAME)
        await leader.crash()
        took = await wait_for(follower.elector.is_leader, 5)
        assert took >= TIMING["lease_duration_s"] - TIMING["renew_deadline_s"]
        assert api.holder(NS, NAME) == follower.elector.identity != holder
        assert api.leases[(NS, NAME)]["spec"]["leaseTransitions"] == 1
        await follower.shut_down()

    async def test_a_released_lease_is_taken_over_without_waiting_it_out(
            self, api: LeaseApi) -> None:
        first = Campaign(candidate(api, "first"))
        await wait_for(first.elector.is_leader, 3)
        second = Campaign(candidate(api, "second"))
        await asyncio.sleep(0.5)
        assert not second.elector.is_leader()
        await first.shut_down()  # SIGTERM: graceful, releases the Lease
        took = await wait_for(second.elector.is_leader, 3)
        assert took < TIMING["lease_duration_s"]
        await second.shut_down()
        assert api.holder(NS, NAME) is None

    async def test_a_leader_that_cannot_reach_the_api_steps_down_within_the_renew_deadline(
            self, api: LeaseApi) -> None:
        leader = Campaign(candidate(api, "leader"))
        await wait_for(leader.elector.is_leader, 3)
        api.down = True
        took = await wait_for(lambda: not leader.elector.is_leader(), 3)
        # before any follower could have seen the lease expire
        assert took < TIMING["lease_duration_s"]
        api.down = False
        await wait_for(leader.elector.is_leader, 3)  # comes back when the API does
        await leader.shut_down()


class Publisher:
    """Stands in for PackLoaderService: counts starts and stops, publishes while running."""

    name = "pack-loader"
    running: list["Publisher"] = []

    def __init__(self) -> None:
        self.stopped = asyncio.Event()

    async def start(self, nc: Any, js: Any) -> None:
        Publisher.running.append(self)

    async def run(self) -> None:
        await self.stopped.wait()

    async def stop(self) -> None:
        self.stopped.set()
        if self in Publisher.running:
            Publisher.running.remove(self)

    def stats(self) -> dict[str, Any]:
        return {"publishes": 0}


class TestLeaderOnlyService:
    async def test_only_the_leader_runs_the_publisher_and_a_follower_takes_over(
            self, api: LeaseApi) -> None:
        Publisher.running = []
        services = [LeaderOnly(Publisher, candidate(api, name), "pack-loader")
                    for name in ("one", "two")]
        for service in services:
            await service.start(None, None)
        runs = [asyncio.create_task(service.run()) for service in services]
        await wait_for(lambda: len(Publisher.running) == 1, 3)
        leader = next(s for s in services if s.elector.is_leader())
        follower = next(s for s in services if s is not leader)
        assert leader.stats()["leader"] and not follower.stats()["leader"]
        await asyncio.sleep(0.5)
        assert len(Publisher.running) == 1  # the follower stays idle
        first = Publisher.running[0]
        await leader.stop()  # graceful: the publisher drains, the Lease is released
        assert first.stopped.is_set()
        await wait_for(lambda: len(Publisher.running) == 1 and Publisher.running[0] is not first,
                       3)
        assert follower.elector.is_leader()
        await follower.stop()
        await asyncio.wait_for(asyncio.gather(*runs), 3)
        assert Publisher.running == []


class TestWhenToElect:
    def test_in_a_cluster_auto_elects_outside_it_runs_alone(self) -> None:
        settings = load_settings({})
        assert election_wanted(settings, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
        assert not election_wanted(settings, {})
        assert election_wanted(load_settings({"GREENTIC_LEADER_ELECTION": "lease"}), {})
        off = load_settings({"GREENTIC_LEADER_ELECTION": "off"})
        assert not election_wanted(off, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"})

    def test_without_election_the_service_itself_is_returned(self,
                                                             monkeypatch: Any) -> None:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        service = Publisher()
        assert leader_elected(load_settings({}), lambda: service, "pack-loader") is service

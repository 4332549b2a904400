"""One contract, three backends: sessions and state behave the same on JetStream KV, Redis and
memory (real nats-server and real Redis)."""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest

from greentic.errors import RevisionConflict, SubjectError
from greentic.session import MemoryRecords, Records, RecordSessionStore, Session, SessionKey
from greentic.session.kv import JetStreamRecords
from greentic.session.redis_store import RedisRecords
from greentic.state.backends import RecordStateStore
from greentic.state.store import StateKey
from greentic.types.tenant import TenantCtx
from tests.backends import NatsServer, RedisServer

BACKENDS = ["jetstream", "redis", "memory"]
ACME = TenantCtx("dev", "acme", "support")
GLOBEX = TenantCtx("dev", "globex", "support")
_names = itertools.count()

MakeRecords = Callable[..., Awaitable[Records]]


@pytest.fixture(params=BACKENDS)
async def make_records(request: pytest.FixtureRequest, nats_server: NatsServer,
                       redis_server: RedisServer) -> AsyncIterator[MakeRecords]:
    """A factory of empty record stores of one backend (a fresh bucket / prefix each)."""
    backend = request.param
    opened: list[Records] = []
    nc = await nats.connect(nats_server.url) if backend == "jetstream" else None

    async def make(ttl_s: float | None = None) -> Records:
        name = f"contract-{next(_names)}"
        if backend == "jetstream":
            assert nc is not None
            records: Records = await JetStreamRecords.open(nc.jetstream(), name, ttl_s)
        elif backend == "redis":
            records = await RedisRecords.open(redis_server.url, redis_server.prefix, name, ttl_s)
        else:
            records = MemoryRecords(ttl_s)
        opened.append(records)
        return records

    yield make
    for records in opened:
        await records.close()
    if nc is not None:
        await nc.close()


async def eventually_none(read: Callable[[], Awaitable[object]], wait_s: float = 30) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if await read() is None:
            return True
        await asyncio.sleep(0.1)
    return False


def key(conversation: str = "c1", ctx: TenantCtx = ACME, channel: str = "webchat") -> SessionKey:
    return SessionKey(ctx, channel, conversation)


class TestSessionStore:
    """The SessionStore contract."""

    async def test_an_unknown_session_is_none(self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        assert await store.get(key()) is None

    async def test_a_created_session_reads_back_with_its_revision(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        session = Session(turns=3, snapshot={"pack": "p", "flow": "f", "version": "v",
                                             "node": "n", "state": {"x": 1}},
                          state={"name": "Ada"}, applied=["m1"], replies=[{"text": "hi"}])
        revision = await store.create(key(), session)
        assert await store.get(key()) == (session, revision)

    async def test_creating_an_existing_session_is_a_conflict(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        await store.create(key(), Session(turns=1))
        with pytest.raises(RevisionConflict):
            await store.create(key(), Session(turns=99))
        found = await store.get(key())
        assert found is not None and found[0].turns == 1

    async def test_update_on_a_stale_revision_is_a_conflict_and_changes_nothing(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        first = await store.create(key(), Session(turns=1))
        second = await store.update(key(), Session(turns=2), first)
        assert second > first
        with pytest.raises(RevisionConflict) as raised:
            await store.update(key(), Session(turns=99), first)
        assert raised.value.expected == first
        assert await store.get(key()) == (Session(turns=2), second)

    async def test_update_of_a_missing_session_is_a_conflict(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        with pytest.raises(RevisionConflict):
            await store.update(key(), Session(turns=1), 1)

    async def test_concurrent_read_modify_write_loses_no_update(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        await store.create(key(), Session())

        async def increment() -> int:
            conflicts = 0
            while True:
                found = await store.get(key())
                assert found is not None
                try:
                    await store.update(key(), Session(turns=found[0].turns + 1), found[1])
                    return conflicts
                except RevisionConflict:
                    conflicts += 1

        await asyncio.gather(*(increment() for _ in range(20)))
        found = await store.get(key())
        assert found is not None and found[0].turns == 20

    async def test_a_deleted_session_is_gone_and_a_new_one_never_reuses_a_revision(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        old = await store.create(key(), Session(turns=5))
        await store.delete(key())
        assert await store.get(key()) is None
        await store.delete(key())  # deleting nothing is fine
        new = await store.create(key(), Session(turns=1))
        assert new > old
        with pytest.raises(RevisionConflict):  # a holder of the old revision is fenced off
            await store.update(key(), Session(turns=6), old)

    async def test_an_idle_session_expires(self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records(ttl_s=1.0))
        await store.create(key(), Session(turns=1))
        assert await eventually_none(lambda: store.get(key()))
        assert await store.list_keys("dev") == []

    async def test_listing_is_narrowed_by_tenant_team_and_channel(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        keys = [key("c1"), key("c2"), key("c1", channel="slack"),
                key("c1", TenantCtx("dev", "acme", "sales")), key("c1", GLOBEX),
                key("c1", TenantCtx("prod", "acme", "support"))]
        for k in keys:
            await store.create(k, Session())
        await store.delete(key("c2"))
        assert set(await store.list_keys("dev")) == set(keys[:6]) - {keys[1], keys[5]}
        assert set(await store.list_keys("dev", "acme")) == {keys[0], keys[2], keys[3]}
        assert set(await store.list_keys("dev", "acme", "support")) == {keys[0], keys[2]}
        assert await store.list_keys("dev", "acme", "support", "slack") == [keys[2]]
        assert await store.list_keys("prod") == [keys[5]]
        assert await store.list_keys("dev", "nobody") == []

    async def test_tenants_are_isolated_even_with_the_same_conversation_id(
            self, make_records: MakeRecords) -> None:
        store = RecordSessionStore(await make_records())
        await store.create(key("same", ACME), Session(state={"owner": "acme"}))
        await store.create(key("same", GLOBEX), Session(state={"owner": "globex"}))
        acme, globex = await store.get(key("same", ACME)), await store.get(key("same", GLOBEX))
        assert acme is not None and acme[0].state == {"owner": "acme"}
        assert globex is not None and globex[0].state == {"owner": "globex"}
        await store.delete(key("same", GLOBEX))
        assert await store.get(key("same", ACME)) is not None
        assert await store.list_keys("dev", "globex") == []

    @pytest.mark.parametrize("bad", ["a.b", "*", ">", "has space", ""])
    async def test_a_key_token_that_could_escape_its_namespace_is_refused(
            self, make_records: MakeRecords, bad: str) -> None:
        store = RecordSessionStore(await make_records())
        for wrong in (key(bad), key(channel=bad), key("c", TenantCtx("dev", bad, "t"))):
            with pytest.raises(SubjectError):
                await store.create(wrong, Session())
        with pytest.raises(SubjectError):
            await store.list_keys("dev", bad)
        assert await store.list_keys("dev") == []


def skey(name: str = "n", ctx: TenantCtx = ACME, scope: str = "conversation",
         owner: str = "c1") -> StateKey:
    return StateKey(ctx, scope, owner, name)  # type: ignore[arg-type]


class TestStateStore:
    """The StateStore contract on the same backends."""

    async def test_set_get_overwrite_delete(self, make_records: MakeRecords) -> None:
        store = RecordStateStore(await make_records())
        assert await store.get(skey()) is None
        await store.set(skey(), b"one")
        await store.set(skey(), b"two")
        assert await store.get(skey()) == b"two"
        await store.delete(skey())
        assert await store.get(skey()) is None

    async def test_scopes_owners_and_tenants_never_share_a_value(
            self, make_records: MakeRecords) -> None:
        store = RecordStateStore(await make_records())
        keys = [skey(), skey(scope="user"), skey(owner="c2"), skey(ctx=GLOBEX),
                skey(ctx=TenantCtx("dev", "acme", "sales")), skey(scope="tenant", owner="acme")]
        for n, k in enumerate(keys):
            await store.set(k, str(n).encode())
        assert [await store.get(k) for k in keys] == [str(n).encode() for n in range(6)]
        assert set(await store.list_keys(ACME)) == {keys[0], keys[1], keys[2], keys[5]}
        assert set(await store.list_keys(ACME, "conversation")) == {keys[0], keys[2]}
        assert await store.list_keys(ACME, "conversation", "c2") == [keys[2]]
        assert await store.list_keys(GLOBEX) == [keys[3]]

    @pytest.mark.parametrize("bad", ["a.b", "*", ">"])
    async def test_a_key_token_that_could_escape_its_namespace_is_refused(
            self, make_records: MakeRecords, bad: str) -> None:
        store = RecordStateStore(await make_records())
        for wrong in (skey(bad), skey(owner=bad), skey(ctx=TenantCtx("dev", bad, "t"))):
            with pytest.raises(SubjectError):
                await store.set(wrong, b"x")
        with pytest.raises(SubjectError):
            await store.list_keys(ACME, owner=bad)

    async def test_state_expires_when_its_store_has_a_ttl(
            self, make_records: MakeRecords) -> None:
        store = RecordStateStore(await make_records(ttl_s=1.0))
        await store.set(skey(), b"short-lived")
        assert await eventually_none(lambda: store.get(skey()))

"""Pack revisions in KV against a real nats-server: pack-loader records them and keeps the last
K per tenant's pack; executors resume a conversation on the revision it paused in, load it once,
and continue on the current one when it was purged."""

from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from greentic.bus.topology import PACK_VERSIONS_BUCKET, ensure_streams
from greentic.flow import FlowEngine, load_flow
from greentic.hosting.components import ComponentRegistry
from greentic.pack.index import (
    FlowDocument,
    PackVersionDocument,
    decode_pack_version,
    pack_revision,
    pack_version_key,
)
from greentic.pack.versions import PackVersionIndex
from greentic.runner.pack_versions import PackVersions
from greentic.services.executor import TurnApplier
from greentic.session import MemoryRecords, RecordSessionStore, SessionKey
from greentic.types import Envelope, FlowRef, TenantCtx
from tests.backends import NatsServer

CTX = TenantCtx("dev", "acme", "support")
KEY = SessionKey(CTX, "webchat", "c1")

ASK = """
id: ask
type: messaging
start: question
nodes:
  question:
    session.wait: {text: "WORD: your name?"}
    routing: [{to: answer}]
  answer:
    templating.handlebars: {text: "WORD thanks {{in.input.text}}"}
    routing: reply
"""


def revision_document(word: str, tenant: str = "acme") -> PackVersionDocument:
    """Revision of pack `shop` whose `ask` flow says `word`."""
    source = ASK.replace("WORD", word)
    version = load_flow(source, "ask.ygtc").version
    revision = pack_revision("shop", "1.0.0", [("ask", version)], [])
    flow = FlowDocument(tenant=tenant, pack="shop", pack_version="1.0.0", flow="ask",
                        file="ask.ygtc", source=source, version=version, revision=revision)
    return PackVersionDocument(tenant=tenant, pack="shop", pack_version="1.0.0",
                               revision=revision, published_ms=1, flows=[flow], components=[])


@pytest.fixture
async def kv(nats_server: NatsServer) -> AsyncIterator[KeyValue]:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    await js.delete_key_value(PACK_VERSIONS_BUCKET)  # a fresh bucket for every test
    await ensure_streams(js)
    yield await js.key_value(PACK_VERSIONS_BUCKET)
    await nc.close()


class TestRevisionIds:
    """A revision id is a content id of the pack."""

    def test_the_same_content_gives_the_same_revision(self) -> None:
        assert revision_document("v1").revision == revision_document("v1").revision

    def test_a_changed_flow_or_component_gives_another_revision(self) -> None:
        flows = [("ask", "a" * 64)]
        component = [("shout", "1" * 64, b'{"id":"shout"}')]
        base = pack_revision("shop", "1.0.0", flows, component)
        assert base != pack_revision("shop", "1.0.0", [("ask", "b" * 64)], component)
        assert base != pack_revision("shop", "1.0.0", flows, [("shout", "2" * 64,
                                                                b'{"id":"shout"}')])
        assert base != pack_revision("shop", "1.0.1", flows, component)


class TestPackVersionIndex:
    """pack-loader writes each revision once and keeps the last K per tenant's pack."""

    async def test_revisions_are_recorded_in_order_and_readable(self, kv: KeyValue) -> None:
        index = PackVersionIndex(kv, "dev", kept=5)
        v1, v2 = revision_document("v1"), revision_document("v2")
        assert await index.record(v1) == [] and await index.record(v2) == []
        assert await index.history("acme", "shop") == [v1.revision, v2.revision]
        stored = decode_pack_version((await kv.get(
            pack_version_key("dev", "acme", "shop", v1.revision))).value or b"")
        assert stored == v1
        # a restarted loader reads the history back from KV
        assert await PackVersionIndex(kv, "dev", kept=5).history("acme", "shop") == \
            [v1.revision, v2.revision]

    async def test_revisions_beyond_the_kept_ones_are_purged(self, kv: KeyValue) -> None:
        index = PackVersionIndex(kv, "dev", kept=3)
        documents = [revision_document(f"v{n}") for n in range(1, 6)]
        purged = [r for document in documents for r in await index.record(document)]
        assert purged == [documents[0].revision, documents[1].revision]
        assert await index.history("acme", "shop") == [d.revision for d in documents[2:]]
        assert index.purged == 2
        for gone in documents[:2]:
            with pytest.raises(KeyNotFoundError):
                await kv.get(pack_version_key("dev", "acme", "shop", gone.revision))
        await kv.get(pack_version_key("dev", "acme", "shop", documents[2].revision))

    async def test_deploying_a_kept_revision_again_makes_it_current(self, kv: KeyValue) -> None:
        index = PackVersionIndex(kv, "dev", kept=5)
        v1, v2 = revision_document("v1"), revision_document("v2")
        for document in (v1, v2, v1, v1):
            await index.record(document)
        assert await index.history("acme", "shop") == [v2.revision, v1.revision]

    async def test_tenants_have_their_own_histories(self, kv: KeyValue) -> None:
        index = PackVersionIndex(kv, "dev", kept=1)
        await index.record(revision_document("v1", tenant="acme"))
        await index.record(revision_document("v2", tenant="globex"))
        assert await index.history("acme", "shop") == [revision_document("v1").revision]
        assert index.purged == 0


def message(n: int, text: str) -> Envelope:
    return Envelope(id=f"m{n}", ctx=CTX, channel="webchat", provider="webchat",
                    conversation="c1", text=text, flow=FlowRef("shop", "ask"))


class TestPinnedTurns:
    """The executor runs a paused conversation's next turn on the revision it paused in."""

    @staticmethod
    def applier(kv: KeyValue) -> TurnApplier:
        engine = FlowEngine()
        versions = PackVersions(engine, ComponentRegistry(None), cached=4)  # type: ignore[arg-type]
        versions.attach(kv, None)
        return TurnApplier(engine, RecordSessionStore(MemoryRecords()), "e1", versions)

    @staticmethod
    def current(applier: TurnApplier, document: PackVersionDocument):
        flow = document.flows[0]
        return applier.engine.prepare(load_flow(flow.source, flow.file), "shop",
                                      document.revision)

    async def test_a_conversation_paused_in_v1_finishes_in_v1_and_the_next_starts_in_v2(
            self, kv: KeyValue) -> None:
        index = PackVersionIndex(kv, "dev", kept=5)
        v1, v2 = revision_document("v1"), revision_document("v2")
        applier = self.applier(kv)
        await index.record(v1)
        assert [r.text for r in await applier.apply(
            KEY, self.current(applier, v1), message(1, "hi"), 1)] == ["v1: your name?"]
        await index.record(v2)
        on_v2 = self.current(applier, v2)
        assert [r.text for r in await applier.apply(KEY, on_v2, message(2, "Ada"), 2)] == \
            ["v1 thanks Ada"]
        assert [r.text for r in await applier.apply(KEY, on_v2, message(3, "hi"), 3)] == \
            ["v2: your name?"]
        assert applier.pinned_turns == 1 and applier.versions.loads == 1  # type: ignore[union-attr]

    async def test_an_older_revision_is_read_from_kv_once(self, kv: KeyValue) -> None:
        v1, v2 = revision_document("v1"), revision_document("v2")
        await PackVersionIndex(kv, "dev", kept=5).record(v1)
        applier = self.applier(kv)
        versions = applier.versions
        assert versions is not None
        first = await versions.get(CTX, "shop", v1.revision)
        await kv.purge(pack_version_key("dev", "acme", "shop", v1.revision))
        assert await versions.get(CTX, "shop", v1.revision) is first  # cached: no KV read
        assert versions.pinned_components(CTX, "shop", v1.revision) == {}
        assert versions.pinned_components(CTX, "shop", v2.revision) is None

    async def test_a_purged_revision_is_counted_and_the_turn_runs_on_the_current_one(
            self, kv: KeyValue) -> None:
        index = PackVersionIndex(kv, "dev", kept=1)
        v1, v2 = revision_document("v1"), revision_document("v2")
        applier = self.applier(kv)
        await index.record(v1)
        await applier.apply(KEY, self.current(applier, v1), message(1, "hi"), 1)
        assert await index.record(v2) == [v1.revision]
        # the paused node exists in v2: today's behaviour, it resumes there
        assert [r.text for r in await applier.apply(
            KEY, self.current(applier, v2), message(2, "Ada"), 2)] == ["v2 thanks Ada"]
        assert applier.versions.gone == 1  # type: ignore[union-attr]

    async def test_a_session_on_the_current_revision_reads_no_revision(
            self, kv: KeyValue) -> None:
        v1 = revision_document("v1")  # never recorded: any read of it would count as gone
        applier = self.applier(kv)
        on_v1 = self.current(applier, v1)
        await applier.apply(KEY, on_v1, message(1, "hi"), 1)
        assert [r.text for r in await applier.apply(KEY, on_v1, message(2, "Ada"), 2)] == \
            ["v1 thanks Ada"]
        assert applier.versions.gone == 0 and applier.versions.loads == 0  # type: ignore


def test_a_revision_document_survives_the_round_trip() -> None:
    document = revision_document("v1")
    assert msgspec.json.decode(msgspec.json.encode(document), type=PackVersionDocument) == \
        document

"""Component bytes no kept pack revision names leave the object store (real nats-server): bytes
of purged revisions and strays go, bytes any env's kept revision names stay, young bytes stay,
and an unreadable revision stops the round; pack-loader runs it after it purged a revision."""

import hashlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from nats.js.errors import ObjectNotFoundError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from greentic.bus.topology import (
    COMPONENT_INDEX_BUCKET,
    COMPONENTS_OBJECT_STORE,
    PACK_VERSIONS_BUCKET,
    ensure_streams,
)
from greentic.config.bundle import Bundle, PackSource, Tenant
from greentic.config.settings import load_settings
from greentic.pack import garbage
from greentic.pack.archive import build_pack, sign_pack
from greentic.pack.garbage import delete_unnamed
from greentic.pack.index import (
    ComponentDocument,
    PackVersionDocument,
    component_key,
    encode_component_document,
    pack_version_key,
)
from greentic.pack.keys import format_public_key
from greentic.pack.versions import PackVersionIndex
from greentic.services.pack_loader import PackLoaderService
from greentic.types.component import ComponentManifest
from tests.backends import NatsServer
from tests.unit.pack_fixtures import KEY, write_source

_stores = itertools.count()


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def revision(tenant: str, number: int, *components: str) -> PackVersionDocument:
    """Revision `number` of `tenant`'s pack `shop`, naming the given components' bytes."""
    return PackVersionDocument(
        tenant=tenant, pack="shop", pack_version=f"1.0.{number}", revision=f"r{number}",
        published_ms=number, flows=[], components=[ComponentDocument(
            tenant=tenant, pack="shop", pack_version=f"1.0.{number}", digest=digest(name),
            size=1, manifest=ComponentManifest(id=name)) for name in components])


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[tuple[JetStreamContext, KeyValue,
                                                              KeyValue, ObjectStore]]:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    for bucket in (PACK_VERSIONS_BUCKET, COMPONENT_INDEX_BUCKET):
        await js.delete_key_value(bucket)  # fresh buckets for every test
    await ensure_streams(js)
    objects = await js.create_object_store(f"gc_test_{next(_stores)}")
    yield (js, await js.key_value(PACK_VERSIONS_BUCKET),
           await js.key_value(COMPONENT_INDEX_BUCKET), objects)
    await nc.close()


async def stored(objects: ObjectStore) -> set[str]:
    names = set()
    for name in map(digest, "ABCDEF"):
        try:
            await objects.get(name)
            names.add(name)
        except ObjectNotFoundError:
            pass
    return names


async def test_bytes_of_purged_revisions_and_strays_go_named_ones_stay(bus) -> None:
    js, versions, index, objects = bus
    for name in "ABCDEF":
        await objects.put(digest(name), name.encode() * 100)
    await PackVersionIndex(versions, "dev", kept=1).record(revision("acme", 1, "C"))
    await PackVersionIndex(versions, "dev", kept=1).record(revision("acme", 2, "A"))  # 1 purged
    await PackVersionIndex(versions, "prod", kept=5).record(revision("acme", 3, "B"))
    # another env's component of a pack without flows: in the index, in no revision
    await index.put(component_key("staging", "acme", "tools", "F"), encode_component_document(
        revision("acme", 4, "F").components[0]))
    deleted = await delete_unnamed(js, versions, index, objects, keep={digest("E")}, grace_s=0)
    assert sorted(deleted) == sorted([digest("C"), digest("D")])
    assert await stored(objects) == {digest("A"), digest("B"), digest("E"), digest("F")}
    assert await delete_unnamed(js, versions, index, objects, keep=set(),
                                grace_s=0) == [digest("E")]


async def test_bytes_younger_than_the_grace_period_stay(bus) -> None:
    js, versions, index, objects = bus
    await objects.put(digest("D"), b"stray")
    assert await delete_unnamed(js, versions, index, objects, keep=set()) == []
    assert await stored(objects) == {digest("D")}


async def test_an_unreadable_revision_deletes_nothing(bus) -> None:
    js, versions, index, objects = bus
    await objects.put(digest("D"), b"maybe named by the unreadable one")
    await versions.put(pack_version_key("dev", "acme", "shop", "r9"), b"{not json")
    assert await delete_unnamed(js, versions, index, objects, keep=set(), grace_s=0) == []
    assert await stored(objects) == {digest("D")}


async def test_a_listing_that_may_be_cut_short_deletes_nothing(
        bus, monkeypatch: pytest.MonkeyPatch) -> None:
    js, versions, index, objects = bus
    await objects.put(digest("D"), b"maybe named by a revision past the first page")
    await PackVersionIndex(versions, "dev", kept=5).record(revision("acme", 1, "A"))
    monkeypatch.setattr(garbage, "SUBJECTS_PAGE", 2)  # revision + history: a full page
    assert await delete_unnamed(js, versions, index, objects, keep=set(), grace_s=0) == []
    assert await stored(objects) == {digest("D")}


async def test_pack_loader_deletes_the_bytes_of_the_revision_it_purged(
        nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garbage, "GRACE_S", 0.0)
    source = write_source(tmp_path / "src")
    pack = tmp_path / "shop.gtpack"
    pack.write_bytes(sign_pack(build_pack(source), KEY))
    first = hashlib.sha256((source / "orders.wasm").read_bytes()).hexdigest()
    bundle = Bundle(packs={"shop": PackSource(path="shop.gtpack")},
                    tenants={"gcacme": Tenant(packs=["shop"])}, base_dir=str(tmp_path))
    service = PackLoaderService(load_settings({
        "GREENTIC_TRUSTED_KEYS": format_public_key(KEY.verify_key),
        "GREENTIC_LEADER_ELECTION": "off", "GREENTIC_PACK_VERSIONS_KEPT": "1"}), bundle)
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await ensure_streams(js)
    for bucket in (PACK_VERSIONS_BUCKET, COMPONENT_INDEX_BUCKET):
        await js.delete_key_value(bucket)  # no other test's revisions and components
    await ensure_streams(js)
    try:
        await service.start(nc, js)
        objects = await js.object_store(COMPONENTS_OBJECT_STORE)
        await objects.get(first)
        (source / "orders.wasm").write_bytes(b"\0asm\x0d\0\x01\0" + bytes(range(200)))
        pack.write_bytes(sign_pack(build_pack(source), KEY))  # v2: other component bytes
        second = hashlib.sha256((source / "orders.wasm").read_bytes()).hexdigest()
        await service.sync()  # v1 purged (one revision kept), and with it v1's bytes
        with pytest.raises(ObjectNotFoundError):
            await objects.get(first)
        await objects.get(second)
        assert service.stats()["component_bytes_deleted"] >= 1
    finally:
        await service.stop()
        await nc.close()

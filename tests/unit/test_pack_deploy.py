"""`greentic pack deploy` between the CLI and pack-loader: the request/reply codec, and the
loader's handling against a real nats-server (refusals name the field or entry, a good deploy
is published and kept across a restart)."""

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.client import Client

from greentic.bus.topology import FLOWS_BUCKET, PACK_DEPLOYMENTS_BUCKET, ensure_streams
from greentic.config.bundle import Bundle, PackSource, Tenant
from greentic.config.settings import load_settings
from greentic.errors import SubjectError
from greentic.pack.archive import build_pack, sign_pack
from greentic.pack.deploy import (
    DeployedFlow,
    DeployReply,
    DeployRequest,
    decode_deploy_reply,
    decode_deploy_request,
    decode_deployment,
    deployment_key,
    encode_deploy_reply,
    encode_deploy_request,
    request_deploy,
)
from greentic.pack.index import decode_flow_document, flow_key
from greentic.pack.keys import format_public_key
from greentic.services.pack_loader import PackLoaderService
from tests.backends import NatsServer
from tests.unit.pack_fixtures import KEY, rezip, write_source


class TestCodec:
    """Requests and replies are JSON msgspec Structs, checked at decode."""

    def test_a_request_survives_the_round_trip(self) -> None:
        request = DeployRequest(pack="shop", locator="/p/shop.gtpack", digest="sha256:" + "a" * 64)
        assert decode_deploy_request(encode_deploy_request(request)) == request

    def test_only_the_pack_is_required(self) -> None:
        assert decode_deploy_request(b'{"pack": "shop"}') == DeployRequest(pack="shop")

    @pytest.mark.parametrize("body, field", [(b"{}", "pack"), (b'{"pack": 3}', "pack"),
                                             (b'{"pack": "a", "locaton": "x"}', "locaton")])
    def test_a_bad_request_names_the_field(self, body: bytes, field: str) -> None:
        with pytest.raises(msgspec.ValidationError, match=field):
            decode_deploy_request(body)

    def test_a_refusal_carries_only_what_it_says(self) -> None:
        encoded = encode_deploy_reply(DeployReply(ok=False, error="bad", entry="digest"))
        assert msgspec.json.decode(encoded) == {"ok": False, "error": "bad", "entry": "digest"}
        reply = DeployReply(ok=True, pack="shop", version="1.0.0", revision="ab",
                            flows=[DeployedFlow("welcome", "f" * 64)])
        assert decode_deploy_reply(encode_deploy_reply(reply)) == reply

    def test_a_deployment_key_is_checked(self) -> None:
        assert deployment_key("dev", "shop") == "dev.shop"
        with pytest.raises(SubjectError):
            deployment_key("dev", "sh.op")


def signed(source_dir: Path, version: str = "1.2.3") -> bytes:
    write_source(source_dir)
    (source_dir / "pack.yaml").write_text(
        (source_dir / "pack.yaml").read_text().replace("version: 1.2.3", f"version: {version}"))
    return sign_pack(build_pack(source_dir), KEY)


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(nats_server.url)
    await ensure_streams(client.jetstream())
    yield client
    await client.close()


@pytest.fixture
def env() -> str:
    return f"t{uuid.uuid4().hex[:8]}"  # each test its own keys on the shared server


async def started(tmp_path: Path, nc: Client, env: str) -> PackLoaderService:
    """A loader whose bundle serves `shop` from shop.gtpack (version 1.2.3)."""
    if not (tmp_path / "shop.gtpack").exists():
        (tmp_path / "shop.gtpack").write_bytes(signed(tmp_path / "v1"))
    bundle = Bundle(packs={"shop": PackSource(path="shop.gtpack")},
                    tenants={"acme": Tenant(packs=["shop"])}, base_dir=str(tmp_path))
    service = PackLoaderService(load_settings({
        "GREENTIC_TRUSTED_KEYS": format_public_key(KEY.verify_key), "GREENTIC_ENV": env,
        "GREENTIC_LEADER_ELECTION": "off"}), bundle)
    await service.start(nc, nc.jetstream())
    return service


async def served_version(nc: Client, env: str) -> str:
    flows = await nc.jetstream().key_value(FLOWS_BUCKET)
    entry = await flows.get(flow_key(env, "acme", "shop", "welcome"))
    return decode_flow_document(entry.value or b"").pack_version


class TestLoaderDeploy:
    """pack-loader verifies a deploy before anything changes, and keeps a good one."""

    async def test_a_pack_absent_from_the_bundle_is_refused(
            self, tmp_path: Path, nc: Client, env: str) -> None:
        service = await started(tmp_path, nc, env)
        reply = await service.deploy(DeployRequest(pack="billing", locator="x.gtpack"))
        assert not reply.ok and reply.entry == "pack"
        assert "not in the bundle" in reply.error and "add the pack there" in reply.error
        await service.stop()

    async def test_a_tampered_pack_is_refused_naming_the_entry_and_nothing_changes(
            self, tmp_path: Path, nc: Client, env: str) -> None:
        service = await started(tmp_path, nc, env)

        def flip(entries: dict[str, bytes]) -> None:
            entries["flows/welcome/flow.ygtc"] += b"# changed\n"

        (tmp_path / "v2.gtpack").write_bytes(rezip(signed(tmp_path / "v2", "2.0.0"), flip))
        reply = await service.deploy(DeployRequest(pack="shop", locator="v2.gtpack"))
        assert not reply.ok and reply.entry == "flows/welcome/flow.ygtc"
        assert "does not match its SBOM" in reply.error
        assert await served_version(nc, env) == "1.2.3" and service.deploy_refusals == 1
        await service.stop()

    async def test_a_digest_pin_must_match_the_file(
            self, tmp_path: Path, nc: Client, env: str) -> None:
        service = await started(tmp_path, nc, env)
        (tmp_path / "v2.gtpack").write_bytes(signed(tmp_path / "v2", "2.0.0"))
        reply = await service.deploy(DeployRequest(pack="shop", locator="v2.gtpack",
                                                   digest="sha256:" + "0" * 64))
        assert not reply.ok and reply.entry == "digest" and "not the pinned" in reply.error
        await service.stop()

    async def test_a_good_deploy_is_published_and_kept_across_a_restart(
            self, tmp_path: Path, nc: Client, env: str) -> None:
        service = await started(tmp_path, nc, env)
        data = signed(tmp_path / "v2", "2.0.0")
        (tmp_path / "v2.gtpack").write_bytes(data)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        # over the wire, as the CLI sends it
        reply = await request_deploy(nc, DeployRequest(pack="shop", locator="v2.gtpack",
                                                           digest=digest), 10)
        assert reply.ok and reply.version == "2.0.0" and reply.revision
        assert reply.locator == str(tmp_path / "v2.gtpack")
        assert sorted(f.id for f in reply.flows) == ["lookup", "welcome"]
        [component] = reply.components
        orders = (tmp_path / "v2" / "orders.wasm").read_bytes()
        assert component.id == "orders"
        assert component.digest == f"sha256:{hashlib.sha256(orders).hexdigest()}"
        assert await served_version(nc, env) == "2.0.0"
        deployments = await nc.jetstream().key_value(PACK_DEPLOYMENTS_BUCKET)
        record = decode_deployment((await deployments.get(deployment_key(env, "shop"))).value
                                   or b"")
        assert (record.locator, record.digest) == (str(tmp_path / "v2.gtpack"), digest)
        await service.stop()

        restarted = await started(tmp_path, nc, env)
        assert restarted._sources.source("shop") == (str(tmp_path / "v2.gtpack"), digest)
        assert await served_version(nc, env) == "2.0.0"
        await restarted.stop()

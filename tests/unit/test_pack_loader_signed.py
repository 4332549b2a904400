"""pack-loader's view of a `.gtpack` in the bundle: verified first, then published as flow and
component documents; a refused file keeps nothing of itself."""

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from greentic.config.bundle import Bundle, PackSource, Tenant
from greentic.config.settings import load_settings
from greentic.errors import ConfigError
from greentic.pack.archive import build_pack, sign_pack
from greentic.pack.keys import format_public_key
from greentic.services.pack_loader import PackLoaderService
from tests.unit.pack_fixtures import KEY, OTHER_KEY, write_source


def loader(tmp_path: Path, data: bytes, **env: str) -> PackLoaderService:
    (tmp_path / "shop.gtpack").write_bytes(data)
    bundle = Bundle(packs={"shop": PackSource(path="shop.gtpack")},
                    tenants={"acme": Tenant(packs=["shop"])}, base_dir=str(tmp_path))
    settings = load_settings({"GREENTIC_TRUSTED_KEYS": format_public_key(KEY.verify_key),
                              "GREENTIC_LEADER_ELECTION": "off", **env})
    return PackLoaderService(settings, bundle)


def test_a_verified_pack_yields_its_flows_and_components(tmp_path: Path) -> None:
    data = sign_pack(build_pack(write_source(tmp_path / "src")), KEY)
    documents, components, blobs = loader(tmp_path, data)._documents()
    assert sorted(key for key, _ in documents) == ["dev.acme.shop.lookup", "dev.acme.shop.welcome"]
    assert all(d is not None and d.pack_version == "1.2.3" for _, d in documents)
    [(key, component)] = components
    assert key == "dev.acme.shop.orders" and component is not None
    assert component.manifest.world == "node" and component.manifest.operations == ["lookup"]
    assert blobs[component.digest] == (tmp_path / "src" / "orders.wasm").read_bytes()


def test_an_untrusted_pack_is_refused_before_anything_is_published(tmp_path: Path) -> None:
    data = sign_pack(build_pack(write_source(tmp_path / "src")), OTHER_KEY)
    service = loader(tmp_path, data)
    with capture_logs() as logs:
        documents, components, blobs = service._documents()
    assert (documents, components, blobs) == ([], [], {})
    assert service.refusals == 1
    [refusal] = [e for e in logs if e["event"].startswith("pack refused")]
    assert "shop.gtpack" in refusal["error"] and "not a trusted key" in refusal["error"]


def test_the_dev_policy_is_announced_loudly(tmp_path: Path) -> None:
    data = sign_pack(build_pack(write_source(tmp_path / "src")), OTHER_KEY)
    with capture_logs() as logs:
        documents, _, _ = loader(tmp_path, data, GREENTIC_PACK_POLICY="dev")._documents()
    assert len(documents) == 2
    assert sum("DEV TRUST POLICY" in e["event"] for e in logs) == 2  # at start, and per pack


def test_a_pack_id_unlike_the_bundles_is_refused(tmp_path: Path) -> None:
    source = write_source(tmp_path / "src")
    (source / "pack.yaml").write_text((source / "pack.yaml").read_text().replace(
        "pack_id: shop", "pack_id: billing"))
    with capture_logs() as logs:
        assert loader(tmp_path, sign_pack(build_pack(source), KEY))._documents()[0] == []
    assert any("manifest.cbor:pack_id" in e.get("error", "") for e in logs)


@pytest.mark.parametrize("value", ["ed25519:short", "rsa:AAAA", "AAAA"])
def test_a_malformed_trusted_key_stops_the_service_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="GREENTIC_TRUSTED_KEYS"):
        load_settings({"GREENTIC_TRUSTED_KEYS": value})

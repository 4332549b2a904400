"""Component manifests in pack.yaml, import checks and secret names: no wasm needed."""

from pathlib import Path

import pytest

from greentic.component.host import check_imports, detect_world
from greentic.errors import ComponentLoadError, ConfigError
from greentic.pack.devsource import dev_component_files, read_dev_pack
from greentic.secrets import EnvSecretsProvider, secret_variable
from greentic.types import TenantCtx
from greentic.types.component import ComponentCapabilities, ComponentManifest

PACK = """\
pack_id: shop
version: 1.2.0
components:
  - id: orders
    version: 0.1.0
    world: node
    wasm: components/orders.wasm
    operations: [lookup]
    capabilities:
      host: [state, secrets]
      secrets: [api-key]
      limits: {timeout_ms: 200, memory_mib: 32, reuse: conversation}
  - id: echo
"""


def test_pack_yaml_lists_components_with_capabilities_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "pack.yaml").write_text(PACK)
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "orders.wasm").write_bytes(b"\0asm")
    manifest, _ = read_dev_pack(tmp_path)
    orders, echo = manifest.components
    assert orders.capabilities.limits.timeout_ms == 200
    assert orders.capabilities.limits.fuel == 2_000_000_000, "unset limits keep safe defaults"
    assert (echo.world, echo.capabilities.host, echo.capabilities.limits.memory_mib) == (
        "seed", [], 64)
    with pytest.raises(ConfigError, match=r"component 'echo': cannot read .*echo/component\.wasm"):
        dev_component_files(tmp_path, manifest)


def test_an_unknown_capability_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "pack.yaml").write_text(PACK.replace("[state, secrets]", "[state, sockets]"))
    with pytest.raises(ConfigError, match="sockets"):
        read_dev_pack(tmp_path)


class TestImports:
    def manifest(self, *host: str) -> ComponentManifest:
        return ComponentManifest(id="c", capabilities=ComponentCapabilities(host=list(host)))

    def test_wasi_and_type_only_imports_need_no_grant(self) -> None:
        assert check_imports(self.manifest(), ["wasi:io/poll@0.2.6", "wasi:cli/exit@0.2.9",
                                               "greentic:types-core/core@0.6.0"]) == set()

    def test_declared_host_interfaces_are_linked(self) -> None:
        linked = check_imports(self.manifest("state"), ["greentic:state/state-store@1.0.0",
                                                        "greentic:component/control@0.6.0"])
        assert linked == {"greentic:state/state-store@1.0.0",
                          "greentic:component/control@0.6.0"}

    def test_undeclared_ones_are_refused_with_the_grant_to_add(self) -> None:
        with pytest.raises(ComponentLoadError, match=r"add \['log', 'secrets'\]"):
            check_imports(self.manifest(), ["greentic-py:host/log@0.1.0",
                                            "greentic:secrets/secret-store@1.0.0"])

    def test_worlds_are_detected_from_exports(self) -> None:
        assert detect_world({"execute"}) == "seed"
        assert detect_world({"exports", "greentic:component/node@0.6.0"}) == "node"
        assert detect_world({"greentic-py:mcp/tools@0.1.0"}) == "mcp"
        assert detect_world({"run"}) is None


def test_env_secrets_are_per_tenant() -> None:
    assert secret_variable("acme-co", "api.key") == "GREENTIC_SECRET__ACME_CO__API_KEY"
    provider = EnvSecretsProvider({"GREENTIC_SECRET__ACME__API_KEY": "s1"})
    assert provider.get(TenantCtx("dev", "acme", "t"), "api-key") == b"s1"
    assert provider.get(TenantCtx("dev", "globex", "t"), "api-key") is None

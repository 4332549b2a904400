"""`greentic compat`'s component verdicts: real Greentic binaries through our host's load path,
and files made to fail (a core module, placeholder text, broken bytes)."""

import uuid
import zipfile
from pathlib import Path

import pytest

from greentic.compat import components
from greentic.compat.components import judge_component
from tests.greentic_files import greentic_file

DEMO = "greenticai/greentic-demo"
INTEGRATION = "greenticai/greentic-integration"
PROVIDERS = "greenticai/greentic-messaging-providers"
EMPTY_CORE_MODULE = b"\0asm\x01\0\0\0"


def judged(path: Path, root: Path) -> tuple[bool, str]:
    verdict = judge_component(path, root)
    assert verdict.kind == "components"
    return verdict.accepted, verdict.reason


class TestGreenticBinaries:
    """Each verdict names the world it is hosted as, or what is not hosted."""

    def test_a_node_0_6_component_is_accepted_as_node_0_6(self) -> None:
        app = greentic_file(DEMO, "apps/quickstart-app")
        verdict = judge_component(app / "components/component-msg2events.wasm", app)
        assert (verdict.path, verdict.accepted, verdict.reason) == (
            "components/component-msg2events.wasm", True, "node 0.6.0")

    def test_a_node_0_5_component_is_accepted_as_node_0_5(self) -> None:
        pack = greentic_file(INTEGRATION, "crates/test-packs/echo-pack")
        wasm = pack / "components/ai.greentic.component-echo/component_echo.wasm"
        assert judged(wasm, pack) == (True, "node 0.5.0")

    def test_greentics_host_imports_are_granted(self) -> None:
        wasm = greentic_file(PROVIDERS, "dist/wasms/telegram-webhook.wasm")
        assert judged(wasm, wasm.parent) == (True, "node 0.5.0")  # http-client, secrets-store

    def test_an_import_we_do_not_host_is_named(self) -> None:
        wasm = greentic_file(DEMO, "crates/weather-mcp-demo/external-components/"
                             "weatherapi_current.component.wasm")
        assert judged(wasm, wasm.parent) == (
            False, "imports what this host does not offer: wasi:http/types@0.2.6, "
            "wasi:http/outgoing-handler@0.2.6")

    def test_a_provider_world_is_refused_naming_its_exports(self, tmp_path: Path) -> None:
        archive = greentic_file(PROVIDERS, "dist/packs/messaging-telegram.gtpack")
        with zipfile.ZipFile(archive) as pack:
            entry = next(name for name in pack.namelist()
                         if name.startswith("components/messaging-provider-telegram")
                         and name.endswith(".wasm"))
            wasm = tmp_path / "provider.wasm"
            wasm.write_bytes(pack.read(entry))
        accepted, reason = judged(wasm, tmp_path)
        assert not accepted
        assert reason.startswith("exports ")
        assert "greentic:provider-schema-core/schema-core-api@1.0.0" in reason
        assert reason.endswith("(provider worlds are not hosted)")


class TestFilesThatAreNotComponents:
    def test_a_core_module_is_not_a_component(self, tmp_path: Path) -> None:
        (tmp_path / "core.wasm").write_bytes(EMPTY_CORE_MODULE)
        assert judged(tmp_path / "core.wasm", tmp_path) == (
            False, "a core module, not a component")

    def test_placeholder_text_is_not_webassembly(self, tmp_path: Path) -> None:
        (tmp_path / "demo.wasm").write_text("Placeholder artifact for demo.bridge (not a real "
                                            "component)\n")
        assert judged(tmp_path / "demo.wasm", tmp_path) == (False, "not WebAssembly")

    def test_broken_component_bytes_are_refused_with_wasmtimes_reason(self,
                                                                      tmp_path: Path) -> None:
        (tmp_path / "torn.wasm").write_bytes(b"\0asm\x0d\x00\x01\x00" + b"\x07\xff\xff" * 9)
        accepted, reason = judged(tmp_path / "torn.wasm", tmp_path)
        assert not accepted
        assert reason.startswith("not a valid component: ")

    def test_an_unreadable_file_is_a_refusal_not_an_exception(self, tmp_path: Path) -> None:
        (tmp_path / "dir.wasm").mkdir()
        accepted, reason = judged(tmp_path / "dir.wasm", tmp_path)
        assert not accepted
        assert reason == "cannot read it: Is a directory"


def test_identical_bytes_are_judged_once(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    judge = components._judge
    monkeypatch.setattr(components, "_judge",
                        lambda data, digest, name: calls.append(name) or judge(data, digest,
                                                                                 name))
    unique = f"not wasm {uuid.uuid4()}".encode()
    for name in ("a.wasm", "b.wasm"):
        (tmp_path / name).write_bytes(unique)
    assert [judged(tmp_path / name, tmp_path) for name in ("a.wasm", "b.wasm")] == [
        (False, "not WebAssembly")] * 2
    assert calls == ["a"]


@pytest.mark.parametrize("data", [b"", b"\0as", b"\0asm\x02\0\0\0"])
def test_truncated_or_unknown_headers_never_raise(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "x.wasm").write_bytes(data)
    accepted, reason = judged(tmp_path / "x.wasm", tmp_path)
    assert not accepted
    assert reason.startswith("not WebAssembly")

"""Real node components built by Greentic's Rust toolchain, hosted unchanged: the 0.5.0 and
0.6.0 node worlds side by side, Greentic's host imports, refusal at load.

The binaries are Greentic's own (never committed): `tests.greentic_files` copies them from this
machine's snapshots of Greentic's repositories and skips a test when one is missing."""

import json
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import cbor2
import pytest
import yaml

from greentic.component import ComponentEngine, ComponentHost
from greentic.component.build import describe
from greentic.component.host import state_name
from greentic.errors import ComponentError, ComponentLoadError
from greentic.interfaces.host_imports import DEFINERS
from greentic.interfaces.wit import GREENTIC_PACKAGES, WIT_DIR
from greentic.secrets import EnvSecretsProvider, secret_variable
from greentic.state import MemoryStateStore, StateKey
from greentic.types import TenantCtx
from greentic.types.component import ComponentCapabilities, ComponentManifest
from tests.greentic_files import greentic_file

ACME = TenantCtx("dev", "acme", "support")
INTEGRATION = "greenticai/greentic-integration"
PROVIDERS = "greenticai/greentic-messaging-providers"
WASM_TOOLS = str(Path(sys.executable).parent / "wasm-tools")
TOKEN = "123:secret-token"


@pytest.fixture
def state() -> MemoryStateStore:
    return MemoryStateStore()


@pytest.fixture
def host(engine: ComponentEngine, state: MemoryStateStore) -> ComponentHost:
    secrets = EnvSecretsProvider({secret_variable("acme", "TELEGRAM_BOT_TOKEN"): TOKEN,
                                  secret_variable("acme", "api-key"): "sk-acme-1234"})
    running = ComponentHost(engine, state, secrets, threads=2)
    yield running
    running.close()


def node(name: str, **capabilities) -> ComponentManifest:
    return ComponentManifest(id=name, world="node",
                             capabilities=ComponentCapabilities(**capabilities))


def echo_pack() -> Path:
    return greentic_file(INTEGRATION, "crates/test-packs/echo-pack")


def echo_wasm() -> bytes:
    return (echo_pack() / "components/ai.greentic.component-echo/component_echo.wasm"
            ).read_bytes()


def echo_node() -> tuple[str, dict]:
    """The echo flow's node as written in `flows/main.ygtc`: (component, its input)."""
    flow = yaml.safe_load((echo_pack() / "flows/main.ygtc").read_text())
    node_doc = dict(flow["nodes"]["echo"])
    node_doc.pop("routing")
    ((component, node_input),) = node_doc.items()
    return component, node_input


def wasm_tools_wit(path: Path) -> str:
    return subprocess.run([WASM_TOOLS, "component", "wit", str(path)], capture_output=True,
                          text=True, check=True).stdout


def node_interface(wit: str) -> str:
    """The `interface node { … }` of package greentic:component@0.5.0, doc comments dropped."""
    package = wit[wit.index("package greentic:component@0.5.0"):]
    start = package.index("interface node {")
    depth = 0
    for end, char in enumerate(package[start:], start):  # noqa: B007 (read after the loop)
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "}" and depth == 0:
            break
    lines = package[start:end + 1].splitlines()
    return "\n".join(line.strip() for line in lines
                     if line.strip() and not line.strip().startswith("///"))


class TestEchoComponent:
    """Greentic's integration-test echo pack: a 0.5.0 node component that returns its input."""

    def test_it_is_hosted_through_the_0_5_adapter_chosen_at_load(self, host) -> None:
        loaded = host.load(node("ai.greentic.component-echo"), echo_wasm())
        assert (loaded.world, loaded.node.version) == ("node", "0.5.0")
        assert all(name.startswith("wasi:") for name in loaded.imports)

    async def test_messaging_send_returns_what_greentics_runner_gets(self, host) -> None:
        component, node_input = echo_node()
        assert component == "ai.greentic.component-echo"
        loaded = host.load(node(component), echo_wasm())
        output = await host.invoke(loaded, ACME, "sess-1", node_input["operation"], node_input,
                                   flow_id="echo", step_id="echo")
        # the runner sends a JSON InvocationEnvelope (payload and metadata as byte arrays of
        # sorted-key JSON); the echo answers it verbatim and the runner parses the JSON
        assert output == {
            "ctx": {"env": "dev", "tenant": "acme", "tenant_id": "acme", "team": "support",
                    "team_id": "support", "session_id": "sess-1", "flow_id": "echo",
                    "node_id": "echo", "attempt": 1},
            "flow_id": "echo", "node_id": "echo", "op": "messaging.send",
            "payload": list(b'{"channel":"webchat","id":"echo-1","session_id":"sess-echo",'
                            b'"text":"Echo test"}'),
            "metadata": list(b'{"trace_id":"echo-trace"}'),
        }

    def test_the_flow_input_is_the_node_greentic_compiled_into_its_own_gtpack(self) -> None:
        _, node_input = echo_node()
        with zipfile.ZipFile(echo_pack() / "dist/echo-pack.gtpack") as archive:
            manifest = cbor2.loads(archive.read("manifest.cbor"))
        (compiled,) = manifest["flows"][0]["flow"]["nodes"]
        assert compiled["input"]["mapping"] == node_input
        assert manifest["symbols"]["component_ids"][compiled["component"]["id"]] == \
            "ai.greentic.component-echo"

    async def test_without_the_envelope_the_payload_comes_back_as_it_went(self, host) -> None:
        loaded = host.load(node("echo"), echo_wasm())
        sent = {"text": "Echo test", "channel": "webchat"}
        assert await host.invoke(loaded, ACME, "c1", "messaging.send", sent,
                                 envelope=False) == sent

    async def test_an_unknown_operation_is_the_guests_node_error(self, host) -> None:
        loaded = host.load(node("echo"), echo_wasm())
        with pytest.raises(ComponentError) as error:
            await host.invoke(loaded, ACME, "c1", "messaging.teleport", {"text": "x"})
        assert (error.value.code, error.value.message) == ("unsupported_operation",
                                                           "unsupported op: messaging.teleport")

    def test_describe_reads_the_manifest_the_component_reports(self) -> None:
        info = describe(echo_wasm(), "ai.greentic.component-echo")
        assert (info["world"], info["node"], info["name"]) == ("node", "0.5.0",
                                                               "component-echo")
        assert info["operations"] == ["messaging.send", "messaging.ingress",
                                      "ai.greentic.component-echo"]

    def test_our_wit_for_node_0_5_is_the_interface_embedded_in_the_binary(self,
                                                                          tmp_path) -> None:
        embedded = node_interface(wasm_tools_wit(
            echo_pack() / "components/ai.greentic.component-echo/component_echo.wasm"))
        ours = node_interface(wasm_tools_wit(WIT_DIR / "greentic-component-0.5.0"))
        assert ours == embedded


class TestOurOwnNodeComponent:
    """A 0.6.0 guest built from our examples is still hosted through the 0.6 adapter."""

    async def test_orders_answers_through_node_0_6(self, host, guests) -> None:
        loaded = host.load(node("orders", host=["state", "secrets"], secrets=["api-key"]),
                           guests["orders"].read_bytes())
        assert loaded.node.version == "0.6.0"
        answer = await host.invoke(loaded, ACME, "c1", "lookup", {"input": {"order": "A-1"}})
        assert answer["text"].startswith("Order A-1 has shipped")


class TestGreenticHostImports:
    """Greentic's state-store, secrets-store and http-client as real 0.5.0 components use them."""

    async def test_state_store_writes_land_under_the_calling_tenant_and_conversation(
            self, host, state) -> None:
        data = greentic_file(PROVIDERS, "packs/messaging-email/components/provision/"
                             "provision.wasm").read_bytes()
        loaded = host.load(node("provision", host=["state"]), data)
        plan = {"plan": {"actions": [{"type": "config.set", "scope": "email",
                                      "key": "from", "value": "bot@acme.example"}]}}
        result = await host.invoke(loaded, ACME, "c9", "apply", plan, envelope=False)
        assert (result["ok"], result["summary"]["config_keys_written"]) == (True, ["from"])
        stored = await state.get(StateKey(ACME, "conversation", "c9",
                                          state_name("config/email/from")))
        assert stored == b"bot@acme.example"
        assert await state.get(StateKey(ACME, "conversation", "c8",
                                        state_name("config/email/from"))) is None

    @staticmethod
    def telegram(component_host: ComponentHost, **capabilities):
        data = greentic_file(PROVIDERS, "dist/wasms/telegram-webhook.wasm").read_bytes()
        capabilities.setdefault("host", ["secrets", "http"])
        return component_host.load(node("telegram-webhook", **capabilities), data)

    async def test_an_undeclared_secret_is_the_interfaces_denied_error_not_a_trap(
            self, host) -> None:
        loaded = self.telegram(host)
        with pytest.raises(ComponentError) as error:
            await host.invoke(loaded, ACME, "c1", "reconcile_webhook",
                              {"public_base_url": "https://chat.example"}, envelope=False)
        # the guest got secrets-store's `denied` and answered its own node-error with it
        assert error.value.code == "INVALID_INPUT"
        assert error.value.message.startswith("secret store error: SecretsError")
        assert 'name: "denied"' in error.value.message

    async def test_http_client_refused_by_policy_returns_the_error_not_a_trap(
            self, host) -> None:
        loaded = self.telegram(host, secrets=["TELEGRAM_BOT_TOKEN"])
        with pytest.raises(ComponentError) as error:
            await host.invoke(loaded, ACME, "c1", "reconcile_webhook",
                              {"public_base_url": "https://chat.example"}, envelope=False)
        # the guest got http-client's host-error and answered its own node-error with it
        assert error.value.code == "INVALID_INPUT"
        assert error.value.message == ("host 'api.telegram.org' is not in the manifest's "
                                       "http_hosts")

    async def test_http_client_reaches_an_allowed_host(self, host) -> None:
        seen: list[tuple[str, str]] = []

        class TelegramApi(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.command, self.path))
                body = json.dumps({"ok": True, "result": {"url": "https://chat.example/hook"}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), TelegramApi)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            loaded = self.telegram(host, secrets=["TELEGRAM_BOT_TOKEN"],
                                   http_hosts=["127.0.0.1"])
            result = await host.invoke(loaded, ACME, "c1", "reconcile_webhook", {
                "public_base_url": "https://chat.example", "webhook_path": "/hook",
                "api_base_url": f"http://127.0.0.1:{server.server_port}", "dry_run": True},
                envelope=False)
        finally:
            server.shutdown()
            server.server_close()
        assert (result["webhook_reconciled"], result["set_attempted"]) == (True, False)
        assert seen == [("GET", f"/bot{TOKEN}/getWebhookInfo")] * 2

    def test_telemetry_lines_are_logged_as_the_calling_tenant(self) -> None:
        lines: list[tuple[str, str, dict]] = []
        services = SimpleNamespace(log=lambda level, message, fields: lines.append(
            (level, message, fields)))
        funcs: dict = {}
        DEFINERS["greentic:telemetry/logger-api@1.0.0"](
            SimpleNamespace(add_func=funcs.__setitem__), lambda: services)
        span = SimpleNamespace(**{"tenant": "globex", "session-id": None, "flow-id": "f1",
                                  "node-id": "n1", "provider": "webchat", "start-ms": None,
                                  "end-ms": None})
        answer = funcs["log"](None, span, [("level", "warn"), ("message", "slow reply"),
                                           ("ms", "900")], None)
        assert answer == "ok"
        assert lines == [("warn", "slow reply", {"ms": "900", "span_flow_id": "f1",
                                                 "span_node_id": "n1",
                                                 "span_provider": "webchat"})]


class TestRefusedAtLoad:
    def test_an_import_this_host_does_not_provide_is_refused_naming_it(self, host) -> None:
        data = greentic_file("greenticai/greentic-demo", "crates/weather-mcp-demo/"
                             "external-components/weatherapi_current.component.wasm"
                             ).read_bytes()
        with pytest.raises(ComponentLoadError) as refused:
            host.load(node("weatherapi", host=["secrets"]), data)
        assert refused.value.missing == ("wasi:http/types@0.2.6",
                                         "wasi:http/outgoing-handler@0.2.6")
        assert "wasi:http/outgoing-handler@0.2.6" in str(refused.value)

    def test_greentics_http_client_needs_the_http_grant(self, host) -> None:
        with pytest.raises(ComponentLoadError) as refused:
            TestGreenticHostImports.telegram(host, host=["secrets"])
        assert refused.value.undeclared == ("greentic:http/http-client@1.1.0",)
        assert "add ['http'] to capabilities.host" in str(refused.value)


def test_greentics_wit_packages_resolve_into_a_node_0_5_world(tmp_path, host) -> None:
    """The copied packages are well-formed and their worlds are hostable (a dummy build)."""
    wit = tmp_path / "wit"
    (wit / "deps").mkdir(parents=True)
    for package in GREENTIC_PACKAGES:
        (wit / "deps" / package).mkdir()
        (wit / "deps" / package / "package.wit").write_bytes(
            (WIT_DIR / package / "package.wit").read_bytes())
    (wit / "world.wit").write_text(
        "package test:greentic;\nworld node-v05 {\n"
        "  import greentic:http/http-client@1.0.0;\n"
        "  import greentic:secrets-store/secrets-store@1.0.0;\n"
        "  import greentic:telemetry/logger-api@1.0.0;\n"
        "  include greentic:component/component@0.5.0;\n}\n")
    subprocess.run([WASM_TOOLS, "component", "embed", "--dummy", str(wit), "--world",
                    "node-v05", "-o", str(tmp_path / "core.wasm")], check=True)
    subprocess.run([WASM_TOOLS, "component", "new", str(tmp_path / "core.wasm"), "-o",
                    str(tmp_path / "dummy.wasm")], check=True)
    loaded = host.load(node("dummy", host=["http", "secrets", "log"]),
                       (tmp_path / "dummy.wasm").read_bytes())
    assert loaded.node.version == "0.5.0"
    assert set(loaded.imports) == {
        "greentic:interfaces-types/types@0.1.0", "greentic:http/http-client@1.0.0",
        "greentic:secrets-store/secrets-store@1.0.0", "greentic:telemetry/logger-api@1.0.0",
        "greentic:component/control@0.5.0"}

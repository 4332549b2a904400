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

from greentic.component import ComponentEngine, ComponentHost, cbor
from greentic.component.build import describe
from greentic.component.host import state_name
from greentic.component.invocation import envelope_payload_cbor, node_failure, output_cbor_text
from greentic.component.node import U64_MAX, NodeCall, NodeV06
from greentic.errors import ComponentError, ComponentLoadError
from greentic.interfaces.host_imports import DEFINERS
from greentic.interfaces.values import field, record
from greentic.interfaces.wit import GREENTIC_PACKAGES, WIT_DIR
from greentic.secrets import EnvSecretsProvider, secret_variable
from greentic.state import MemoryStateStore, StateKey
from greentic.types import TenantCtx
from greentic.types.component import ComponentCapabilities, ComponentManifest
from tests.greentic_files import greentic_file

ACME = TenantCtx("dev", "acme", "support")
DEMO = "greenticai/greentic-demo"
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
                                   flow_id="echo", step_id="echo", by_name=True)
        # the node names its component, so all its fields are the input; the runner sends a
        # JSON InvocationEnvelope (payload and metadata as byte arrays of sorted-key JSON); the
        # echo answers it verbatim and the runner parses the JSON
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


def quickstart() -> Path:
    return greentic_file(DEMO, "apps/quickstart-app")


def webchat_message(text: str, user: str, conversation: str) -> dict:
    """Greentic's ChannelMessageEnvelope (greentic-types src/messaging.rs) for a WebChat
    message, as messaging-provider-webchat makes it from a Direct Line activity
    (ops/envelope.rs `build_webchat_envelope_with_ctx`, anonymous token: env and tenant
    `default`); empty and absent fields are not serialized."""
    return {"id": f"webchat-{conversation}",
            "tenant": {"env": "default", "tenant": "default", "tenant_id": "default",
                       "attempt": 0},
            "channel": conversation, "session_id": conversation,
            "from": {"id": user, "kind": "user"}, "text": text,
            "metadata": {"env": "default", "route": conversation, "tenant": "default",
                         "universal": "true", "user_id": user, "user_verified": "false"}}


def extract_event_fields(message: dict) -> dict:
    """The quickstart's `extract_event` node as written, `{{in.input}}` rendered (an exact
    expression renders to the value itself), without `component`/`operation`."""
    flow = yaml.safe_load((quickstart() / "flows/on_message.ygtc").read_text())
    fields = dict(flow["nodes"]["extract_event"]["component.exec"])
    assert (fields.pop("component"), fields.pop("operation")) == ("component-msg2events",
                                                                  "extract")
    assert fields == {"message": "{{in.input}}", "source_provider": "webchat"}
    return {**fields, "message": message}


class TestQuickstartApp:
    """Greentic's quickstart: `component.exec` of msg2events (a 0.6.0 node exporting only
    `invoke`), called as Greentic's runner calls it for a WebChat "hello" from u1 in c1."""

    MANIFEST = ComponentManifest(id="component-msg2events", world="node",
                                 operations=["route", "extract", "validate"])
    TENANT = TenantCtx("local", "default", "")

    def msg2events(self, host: ComponentHost):
        data = (quickstart() / "components/component-msg2events.wasm").read_bytes()
        return host.load(self.MANIFEST, data)

    def test_it_is_hosted_through_node_0_6_with_invoke_alone(self, host) -> None:
        loaded = self.msg2events(host)
        assert (loaded.node.version, loaded.node_functions) == ("0.6.0", ("invoke",))
        assert host.describe_node(loaded) == {}

    def test_the_node_is_what_greentic_compiled_into_its_gtpack(self) -> None:
        flow = yaml.safe_load((quickstart() / "flows/on_message.ygtc").read_text())
        with zipfile.ZipFile(quickstart() / "dist/quickstart-app.gtpack") as archive:
            manifest = cbor2.loads(archive.read("manifest.cbor"))
        (compiled,) = [f["flow"] for f in manifest["flows"] if f["id"] == "on_message"]
        node = next(n for n in compiled["nodes"]
                    if manifest["symbols"]["node_ids"][n["id"]] == "extract_event")
        assert node["input"]["mapping"] == flow["nodes"]["extract_event"]["component.exec"]
        assert manifest["symbols"]["component_ids"][node["component"]["id"]] == \
            "component.exec"

    def test_component_exec_gives_msg2events_the_runners_envelope_with_no_input(self) -> None:
        # the runner's ComponentPayload keeps only `input`/`config`: `message` is dropped, so
        # the InvocationEnvelope's payload is JSON null and envelope_v0_6 unwraps it to CBOR
        fields = extract_event_fields(webchat_message("hello", "u1", "c1"))
        call = NodeCall(self.TENANT, "c1", "extract", fields, "component-msg2events",
                        flow_id="on_message", step_id="extract_event", deadline_ms=0)
        op, envelope = NodeV06().arguments(call)
        assert op == "extract"
        assert field(envelope, "payload-cbor") == b"\xf6"
        assert (field(envelope, "flow-id"), field(envelope, "step-id"),
                field(envelope, "component-id"), field(envelope, "attempt"),
                field(envelope, "metadata-cbor")) == ("on_message", "extract_event",
                                                      "component-msg2events", 1, None)
        ctx = field(envelope, "ctx")
        assert {name: field(ctx, name) for name in (
            "tenant-id", "team-id", "user-id", "env-id", "trace-id", "correlation-id",
            "deadline-ms", "attempt", "idempotency-key", "i18n-id")} == {
            "tenant-id": "default", "team-id": None, "user-id": None, "env-id": "local",
            "trace-id": "", "correlation-id": "c1", "deadline-ms": U64_MAX, "attempt": 1,
            "idempotency-key": "c1", "i18n-id": ""}

    async def test_msg2events_answers_what_the_reply_template_reads(self, host) -> None:
        loaded = self.msg2events(host)
        fields = extract_event_fields(webchat_message("hello", "u1", "c1"))
        prev = await host.invoke(loaded, self.TENANT, "c1", "extract", fields,
                                 flow_id="on_message", step_id="extract_event")
        # `prev` is the decoded output-cbor as it is (no unwrapping of `ok`)
        assert prev == {"ok": True, "event": {"event_type": "message.text",
                                              "source": {"provider": "unknown"}, "data": {}}}
        event = prev["event"]
        assert (event["event_type"], event["source"]["provider"], event["data"]) == (
            "message.text", "unknown", {})

    async def test_the_same_fields_reach_it_when_the_node_names_the_component(
            self, host) -> None:
        loaded = self.msg2events(host)
        fields = extract_event_fields(webchat_message("hello", "u1", "c1"))
        prev = await host.invoke(loaded, self.TENANT, "c1", "extract", fields,
                                 flow_id="on_message", step_id="extract_event", by_name=True)
        assert prev["event"] == {"event_type": "message.text",
                                 "source": {"provider": "webchat"}, "data": {"text": "hello"}}


class TestRunnerCbor:
    """The 0.6 call's CBOR and answers, byte for byte as the runner's serde_cbor has them."""

    def test_json_values_are_written_as_serde_cbor_writes_them(self) -> None:
        value = {"b": [1.5, 100000.0, 0.1, -1, 24, None, True], "a": "é"}
        assert cbor.dumps(value) == bytes.fromhex(
            "a2 6161 62c3a9 6162 87 f93e00 fa47c35000 fb3fb999999999999a 20 1818 f6 f5")
        # keys in byte order (serde_json's BTreeMap), not CBOR's length-first canonical order
        assert cbor.dumps({"c": 2, "bb": 1}) == bytes.fromhex("a2 626262 01 6163 02")

    def test_the_envelope_is_unwrapped_to_its_payload(self) -> None:
        call = NodeCall(ACME, "c1", "lookup", {"input": {"order": "A-1"}, "config": {"k": 1}},
                        "orders", flow_id="f", step_id="n")
        assert cbor2.loads(envelope_payload_cbor(call.input_json())) == {
            "config": {"k": 1}, "input": {"order": "A-1"}}
        raw = NodeCall(ACME, "c1", "lookup", {"text": "hi"}, "orders", envelope=False)
        assert cbor2.loads(envelope_payload_cbor(raw.input_json())) == {"text": "hi"}

    def test_payload_bytes_that_are_not_json_go_as_a_byte_string(self) -> None:
        text = json.dumps({"ctx": {"env": "dev", "tenant": "acme", "tenant_id": "acme",
                                   "attempt": 1},
                           "flow_id": "f", "node_id": None, "op": "x",
                           "payload": [255, 0, 1, 42], "metadata": []})
        assert envelope_payload_cbor(text) == b"\x44\xff\x00\x01\x2a"

    def test_output_that_is_not_json_cbor_is_read_as_text(self) -> None:
        assert output_cbor_text(cbor2.dumps({"a": [1, 2.5]})) == '{"a":[1,2.5]}'
        assert output_cbor_text(b'{"a":1}') == '{"a":1}'  # a guest answering JSON bytes
        assert output_cbor_text(cbor2.dumps(b"\x00\x01")) == "B\x00\x01"
        assert output_cbor_text(b"\xf6\xf6") == "\ufffd\ufffd"  # trailing bytes
        assert output_cbor_text(cbor2.dumps({"n": float("nan")})) == '{"n":null}'

    def test_a_result_that_is_not_ok_is_the_runners_invocation_failure(self) -> None:
        result = SimpleNamespace(tag="ok", payload=record(
            ok=False, output_cbor=cbor2.dumps({"why": "no"}), output_metadata_cbor=None))
        with pytest.raises(ComponentError) as error:
            NodeV06().output(result, lambda *_: None)
        assert (error.value.code, error.value.message) == ("COMPONENT_INVOCATION_FAILED",
                                                           '{"why":"no"}')

    def test_answers_the_runners_engine_reads_as_failures(self) -> None:
        assert node_failure({"ok": False, "error": {"code": "E1", "message": "bad"}}) == (
            "E1", "bad")
        assert node_failure({"ok": False, "error": "just text"}) is None
        assert node_failure({"error": {"code": "http", "message": "down", "status": 503}}) == (
            "http", "down (status 503)")
        assert node_failure({"ok": True, "error": {}}) == ("tool_error",
                                                           "tool returned an error")
        assert node_failure({"error": {"code": "x"}, "result": 1}) is None


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

"""The component host with real wasmtime and guests built from source: worlds, host imports,
limits, isolation, refusal at load."""

import subprocess
import sys
from pathlib import Path

import pytest

from greentic.component import ComponentEngine, ComponentHost
from greentic.errors import ComponentError, ComponentLoadError
from greentic.mcp import call_tool, list_tools
from greentic.secrets import EnvSecretsProvider, secret_variable
from greentic.state import MemoryStateStore, StateKey
from greentic.types import TenantCtx
from greentic.types.component import ComponentCapabilities, ComponentLimits, ComponentManifest

ACME = TenantCtx("dev", "acme", "support")
GLOBEX = TenantCtx("dev", "globex", "sales")


@pytest.fixture
def state() -> MemoryStateStore:
    return MemoryStateStore()


@pytest.fixture
def host(engine: ComponentEngine, state: MemoryStateStore) -> ComponentHost:
    secrets = EnvSecretsProvider({secret_variable("acme", "api-key"): "sk-acme-1234",
                                  secret_variable("globex", "api-key"): "sk-globex-9999"})
    running = ComponentHost(engine, state, secrets, threads=2)
    yield running
    running.close()


def manifest(name: str, world: str = "seed", **capabilities) -> ComponentManifest:
    limits = capabilities.pop("limits", ComponentLimits())
    operations = capabilities.pop("operations", [])
    return ComponentManifest(id=name, world=world, operations=operations,
                             capabilities=ComponentCapabilities(
        limits=limits, **capabilities))


def orders_manifest(**capabilities) -> ComponentManifest:
    capabilities.setdefault("host", ["state", "secrets"])
    capabilities.setdefault("secrets", ["api-key"])
    return manifest("orders", "node", **capabilities)


async def say(host: ComponentHost, loaded, text: str, tenant: TenantCtx = ACME,
              conversation: str = "c1") -> str:
    return await host.execute(loaded, tenant, conversation, id="m1", content=text, sender="u",
                              timestamp=0)


class TestSeedWorld:
    async def test_the_python_echo_guest_uppercases(self, host, guests) -> None:
        loaded = host.load(manifest("echo"), guests["echo"].read_bytes())
        assert loaded.world == "seed"
        assert await say(host, loaded, "hello wasm") == "HELLO WASM"

    async def test_the_wat_guest_is_about_a_kilobyte_and_answers_the_same(self, host,
                                                                          guests) -> None:
        data = guests["tiny"].read_bytes()
        assert len(data) < 2048
        loaded = host.load(manifest("tiny"), data)
        assert await say(host, loaded, "hello wasm") == "HELLO WASM"
        assert await say(host, loaded, "again") == "AGAIN"


class TestNodeWorld:
    async def test_orders_remembers_per_conversation_and_reads_its_tenants_secret(
            self, host, guests, state) -> None:
        loaded = host.load(orders_manifest(operations=["lookup", "peek"]),
                           guests["orders"].read_bytes())
        assert loaded.world == "node"
        first = await host.invoke(loaded, ACME, "c1", "lookup", {"input": {"order": "A-1"}})
        assert first["text"] == "Order A-1 has shipped (checked with key …1234)."
        second = await host.invoke(loaded, ACME, "c1", "lookup", {"input": {"order": "A-2"}})
        assert second["previous"] == "A-1"
        other = await host.invoke(loaded, ACME, "c2", "lookup", {"input": {"order": "B-1"}})
        assert other["previous"] == "", "another conversation starts empty"
        globex = await host.invoke(loaded, GLOBEX, "c1", "lookup", {"input": {"order": "G"}})
        assert globex["previous"] == "" and "…9999" in globex["text"]
        stored = await state.get(StateKey(ACME, "conversation", "c1", "last-order"))
        assert stored == b"A-2"

    async def test_reading_another_tenants_state_through_the_import_is_denied(
            self, host, guests) -> None:
        loaded = host.load(orders_manifest(), guests["orders"].read_bytes())
        await host.invoke(loaded, GLOBEX, "c1", "lookup", {"input": {"order": "G-7"}})
        with pytest.raises(ComponentError) as denied:
            await host.invoke(loaded, ACME, "c1", "peek", {"input": {"tenant": "globex"}})
        assert denied.value.code == "permission-denied"
        assert "globex" in denied.value.message

    async def test_an_operation_the_manifest_does_not_list_is_not_found(self, host,
                                                                       guests) -> None:
        loaded = host.load(orders_manifest(operations=["lookup"]), guests["orders"].read_bytes())
        with pytest.raises(ComponentError) as error:
            await host.invoke(loaded, ACME, "c1", "peek", {})
        assert error.value.code == "not-found"

    async def test_a_secret_the_manifest_does_not_declare_is_refused(self, host,
                                                                    guests) -> None:
        loaded = host.load(orders_manifest(secrets=[]), guests["orders"].read_bytes())
        with pytest.raises(ComponentError) as error:
            await host.invoke(loaded, ACME, "c1", "lookup", {"input": {"order": "A-1"}})
        assert error.value.code == "missing-secret"
        assert "not declared" in error.value.message


class TestRefusedAtLoad:
    def test_a_guest_importing_an_undeclared_host_interface_is_refused(self, host,
                                                                      guests) -> None:
        with pytest.raises(ComponentLoadError) as refused:
            host.load(orders_manifest(host=["secrets"]), guests["orders"].read_bytes())
        assert refused.value.undeclared == ("greentic:state/state-store@1.0.0",)
        assert "does not declare" in str(refused.value)

    def test_a_guest_importing_what_the_host_does_not_offer_is_refused_with_the_list(
            self, host, tmp_path) -> None:
        wit = tmp_path / "wit"
        wit.mkdir()
        (wit / "world.wit").write_text(
            "package acme:weird@1.0.0;\ninterface thing { ping: func() -> u32; }\n"
            "world w { import thing; export run: func() -> u32; }\n")
        (tmp_path / "w.wat").write_text(
            '(module (import "acme:weird/thing@1.0.0" "ping" (func $ping (result i32)))'
            ' (func (export "run") (result i32) call $ping))')
        wasm_tools = str(Path(sys.executable).parent / "wasm-tools")
        subprocess.run([wasm_tools, "component", "embed", str(wit), "--world", "w",
                        str(tmp_path / "w.wat"), "-o", str(tmp_path / "e.wasm")], check=True)
        subprocess.run([wasm_tools, "component", "new", str(tmp_path / "e.wasm"), "-o",
                        str(tmp_path / "w.wasm")], check=True)
        with pytest.raises(ComponentLoadError) as refused:
            host.load(manifest("weird"), (tmp_path / "w.wasm").read_bytes())
        assert "exports neither" in str(refused.value)

    def test_a_missing_import_is_named(self, host, guests) -> None:
        from greentic.component.host import check_imports
        with pytest.raises(ComponentLoadError) as refused:
            check_imports(manifest("x"), ["wasi:io/poll@0.2.9", "acme:weird/thing@1.0.0",
                                          "greentic:http/client@1.1.0"])
        assert refused.value.missing == ("acme:weird/thing@1.0.0", "greentic:http/client@1.1.0")

    def test_a_world_other_than_the_manifests_is_refused(self, host, guests) -> None:
        with pytest.raises(ComponentLoadError, match="exports the seed world"):
            host.load(manifest("echo", "node"), guests["echo"].read_bytes())


class TestLimits:
    async def test_an_infinite_loop_is_stopped_by_the_deadline(self, host, guests) -> None:
        # the default fuel (2e9) lasts ~0.2 s of this loop here: raise it, or fuel races the
        # deadline
        loaded = host.load(manifest("hostile", limits=ComponentLimits(
            timeout_ms=200, fuel=10**12, reuse="conversation")),
                           guests["hostile"].read_bytes())
        await say(host, loaded, "warm up")
        with pytest.raises(ComponentError) as error:  # the epoch deadline, not fuel, ends it
            await say(host, loaded, "loop")
        assert (error.value.code, error.value.message) == ("timeout", "timeout after 200 ms")

    async def test_a_memory_bomb_hits_the_memory_limit(self, host, guests) -> None:
        loaded = host.load(manifest("hostile", limits=ComponentLimits(memory_mib=48)),
                           guests["hostile"].read_bytes())
        with pytest.raises(ComponentError) as error:
            await say(host, loaded, "bomb")
        assert (error.value.code, error.value.message) == ("memory",
                                                           "memory limit 48 MiB exceeded")

    async def test_running_out_of_fuel_is_reported(self, host, guests) -> None:
        loaded = host.load(manifest("hostile", limits=ComponentLimits(fuel=5_000_000)),
                           guests["hostile"].read_bytes())
        with pytest.raises(ComponentError) as error:
            await say(host, loaded, "loop")
        assert error.value.code == "fuel"

    async def test_a_trap_is_an_error_and_the_next_call_is_answered(self, host,
                                                                    guests) -> None:
        loaded = host.load(manifest("hostile", limits=ComponentLimits(reuse="conversation")),
                           guests["hostile"].read_bytes())
        assert await say(host, loaded, "before") == "fine: before"
        with pytest.raises(ComponentError) as error:
            await say(host, loaded, "trap")
        assert error.value.code == "trap"
        assert "RuntimeError: the guest gave up" in error.value.message
        assert loaded.idle_instances() == 0, "the trapped instance was discarded"
        assert await say(host, loaded, "after") == "fine: after"


class TestIsolation:
    async def test_a_reused_instance_never_shows_one_conversation_what_another_left(
            self, host, guests) -> None:
        loaded = host.load(manifest("hostile", limits=ComponentLimits(reuse="conversation")),
                           guests["hostile"].read_bytes())
        await say(host, loaded, "remember:card 4242", conversation="alice")
        assert await say(host, loaded, "recall", conversation="alice") == "card 4242", \
            "alice's instance is reused"
        assert await say(host, loaded, "recall", conversation="bob") == ""
        assert await say(host, loaded, "recall", tenant=GLOBEX, conversation="alice") == ""

    async def test_without_reuse_every_call_gets_a_fresh_instance(self, host, guests) -> None:
        loaded = host.load(manifest("hostile"), guests["hostile"].read_bytes())
        await say(host, loaded, "remember:x")
        assert await say(host, loaded, "recall") == ""


class TestMcpWorld:
    async def test_tools_are_listed_and_called_with_json(self, host, guests) -> None:
        loaded = host.load(manifest("calc", "mcp"), guests["calc"].read_bytes())
        tools = await list_tools(host, loaded, ACME)
        assert [t["name"] for t in tools] == ["add", "shout"]
        assert tools[0]["input_schema"]["required"] == ["a", "b"]
        assert await call_tool(host, loaded, ACME, "c1", "add", {"a": 2, "b": 40}) == {
            "text": "42", "sum": 42.0}
        with pytest.raises(ComponentError, match="no tool named"):
            await call_tool(host, loaded, ACME, "c1", "nope", {})


class TestCompileCache:
    def test_a_second_engine_loads_the_compiled_component_from_disk(self, tmp_path,
                                                                    guests) -> None:
        data = guests["tiny"].read_bytes()
        first = ComponentEngine(tmp_path)
        first.compile("tiny", data)
        second = ComponentEngine(tmp_path)
        second.compile("tiny", data)
        assert (first.cold_compiles, second.cold_compiles, second.cache_hits) == (1, 0, 1)
        first.close()
        second.close()

"""Hostile components (the `spinner` WAT guest): deep recursion, huge outputs and host imports
called in a tight loop are bounded and reported with a typed error, and one tenant burning its
whole budget over and over does not keep another tenant's calls from completing.

Loops, memory bombs, fuel, traps and undeclared imports: tests/unit/test_component_host.py.
"""

import asyncio
import statistics
import time

import pytest
from structlog.testing import capture_logs

from greentic.component import ComponentEngine, ComponentHost
from greentic.component.fair import FairSlots
from greentic.component.host import GUEST_LOG_LINES_PER_CALL
from greentic.errors import ComponentError
from greentic.secrets import EnvSecretsProvider
from greentic.state import MemoryStateStore
from greentic.types import TenantCtx
from greentic.types.component import ComponentCapabilities, ComponentLimits, ComponentManifest

ACME = TenantCtx("dev", "acme", "support")
GLOBEX = TenantCtx("dev", "globex", "sales")


class CountingState(MemoryStateStore):
    """Counts the guest's state reads."""

    reads = 0

    async def get(self, key):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().get(key)


@pytest.fixture
def state() -> CountingState:
    return CountingState()


@pytest.fixture
def host(engine: ComponentEngine, state: CountingState) -> ComponentHost:
    running = ComponentHost(engine, state, EnvSecretsProvider({}), threads=2)
    yield running
    running.close()


def spinner(host: ComponentHost, guests, **limits):  # type: ignore[no-untyped-def]
    manifest = ComponentManifest(id="spinner", capabilities=ComponentCapabilities(
        host=["log", "state"], limits=ComponentLimits(**limits)))
    return host.load(manifest, guests["spinner"].read_bytes())


async def say(host: ComponentHost, loaded, text: str, tenant: TenantCtx = ACME) -> str:
    return await host.execute(loaded, tenant, "c1", id="m1", content=text, sender="u",
                              timestamp=0)


async def refused(host: ComponentHost, loaded, text: str) -> ComponentError:
    with pytest.raises(ComponentError) as error:
        await say(host, loaded, text)
    return error.value


class TestRecursion:
    async def test_unbounded_recursion_is_a_trap_naming_the_stack_and_the_next_call_works(
            self, host, guests) -> None:
        loaded = spinner(host, guests, reuse="conversation")
        error = await refused(host, loaded, "r")
        assert (error.code, error.message) == ("trap", "trap: call stack exhausted "
                                                       "(recursion too deep)")
        assert loaded.idle_instances() == 0, "the overflowed instance was dropped"
        assert await say(host, loaded, "") == "ok"


class TestHugeOutputs:
    async def test_output_up_to_the_limit_is_returned(self, host, guests) -> None:
        loaded = spinner(host, guests, max_output_bytes=1024 * 1024)
        assert len(await say(host, loaded, "o1")) == 1024 * 1024

    async def test_100_mib_of_output_is_refused_with_the_limit_named(self, host,
                                                                      guests) -> None:
        loaded = spinner(host, guests, memory_mib=128)
        error = await refused(host, loaded, "o100")
        assert (error.code, error.message) == (
            "output-too-large", "output of 104857600 bytes is over the limit of 1048576 "
                                "(limits.max_output_bytes)")

    async def test_output_cannot_outgrow_the_memory_limit(self, host, guests) -> None:
        """What the host copies out is bounded by the guest's memory cap."""
        loaded = spinner(host, guests, memory_mib=16, max_output_bytes=1 << 30)
        error = await refused(host, loaded, "o32")
        assert error.code == "trap"  # memory.grow failed under the cap: the guest gave up


class TestHostImportsInATightLoop:
    async def test_state_get_called_without_end_is_stopped_by_the_deadline(
            self, host, guests, state) -> None:
        loaded = spinner(host, guests, timeout_ms=300)
        started = time.monotonic()
        error = await refused(host, loaded, "s")
        elapsed = time.monotonic() - started
        assert (error.code, error.message) == ("timeout", "timeout after 300 ms")
        assert state.reads > 0
        print(f"\nstate.get tight loop: {state.reads} host calls in {elapsed * 1000:.0f} ms "
              "before the 300 ms deadline stopped it")

    async def test_log_called_without_end_writes_a_bounded_number_of_lines(self, host,
                                                                           guests) -> None:
        loaded = spinner(host, guests, timeout_ms=300)
        with capture_logs() as logs:
            error = await refused(host, loaded, "l")
        assert error.code == "timeout"
        spam = [entry for entry in logs if entry["event"] == "spam"]
        [dropped] = [entry for entry in logs if entry["event"] == "guest log lines dropped"]
        assert len(spam) == GUEST_LOG_LINES_PER_CALL == dropped["written"]
        assert dropped["dropped"] > 0 and dropped["tenant"] == "acme"
        print(f"\nlog tight loop: {GUEST_LOG_LINES_PER_CALL} lines written, "
              f"{dropped['dropped']} dropped in 300 ms")

    async def test_the_fuel_budget_stops_host_calls_too(self, host, guests) -> None:
        loaded = spinner(host, guests, fuel=200_000, timeout_ms=5000)
        assert (await refused(host, loaded, "l")).code == "fuel"


class TestOneTenantBurningItsBudget:
    async def test_another_tenants_calls_complete_while_one_tenant_burns_every_thread(
            self, host, guests) -> None:
        """Tenant acme keeps 6 calls in flight that each burn a 200 ms deadline (three times the
        threads); globex's calls still complete. Latencies are printed, not asserted."""
        burner = spinner(host, guests, timeout_ms=200)
        quiet = spinner(host, guests)

        async def globex_latencies(count: int) -> list[float]:
            latencies = []
            for _ in range(count):
                started = time.monotonic()
                assert await say(host, quiet, "", tenant=GLOBEX) == "ok"
                latencies.append(time.monotonic() - started)
            return latencies

        idle = await globex_latencies(10)
        stop = asyncio.Event()
        burns: list[str] = []

        async def burn() -> None:
            while not stop.is_set():
                burns.append((await refused(host, burner, "x")).code)

        burners = [asyncio.create_task(burn()) for _ in range(6)]
        await asyncio.sleep(0)  # let the burners queue their calls first
        busy = await globex_latencies(5)
        stop.set()
        await asyncio.gather(*burners)
        assert burns and set(burns) == {"timeout"}
        print(f"\nglobex call latency, idle: median {statistics.median(idle) * 1000:.1f} ms, "
              f"max {max(idle) * 1000:.1f} ms; while acme burns 6 x 200 ms calls on 2 threads: "
              f"median {statistics.median(busy) * 1000:.1f} ms, max {max(busy) * 1000:.1f} ms "
              f"({len(burns)} acme calls timed out)")


class TestFairSlots:
    async def test_a_freed_slot_goes_to_the_other_waiting_tenant_first(self) -> None:
        slots = FairSlots(1)
        order: list[str] = []
        release = asyncio.Event()

        async def call(key: str, name: str) -> None:
            async with slots.slot(key):
                order.append(name)
                await release.wait()

        first = asyncio.create_task(call("a", "a0"))
        await asyncio.sleep(0)
        tasks = [asyncio.create_task(call("a", f"a{i}")) for i in range(1, 4)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(call("b", "b0")))
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *tasks)
        assert order == ["a0", "a1", "b0", "a2", "a3"]

    async def test_a_cancelled_waiter_gives_up_its_turn(self) -> None:
        slots = FairSlots(1)
        held = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with slots.slot("a"):
                held.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await held.wait()
        waiter = asyncio.create_task(slots._acquire("b"))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        await holder
        assert slots.free == 1


class TestWithoutFuelMetering:
    """GREENTIC_WASM_FUEL=false: no fuel limit, the deadline still ends every call."""

    async def test_the_deadline_stops_a_spin_that_the_fuel_limit_would_have(
            self, host, guests, tmp_path) -> None:
        limits = {"fuel": 1_000_000, "timeout_ms": 100}
        assert (await refused(host, spinner(host, guests, **limits), "x")).code == "fuel"
        unmetered = ComponentEngine(tmp_path, fuel=False)
        free = ComponentHost(unmetered, MemoryStateStore(), EnvSecretsProvider({}), threads=1)
        try:
            error = await refused(free, spinner(free, guests, **limits), "x")
            assert (error.code, error.message) == ("timeout", "timeout after 100 ms")
            assert await say(free, spinner(free, guests), "") == "ok"
        finally:
            free.close()
            unmetered.close()

    def test_metered_and_unmetered_code_are_cached_apart(self, guests, tmp_path) -> None:
        data = guests["spinner"].read_bytes()
        engines = [ComponentEngine(tmp_path, fuel=metered) for metered in (True, False)]
        try:
            for engine in engines * 2:
                engine.compile("spinner", data)
            assert [(e.cold_compiles, e.cache_hits) for e in engines] == [(1, 1), (1, 1)]
            assert len(list(tmp_path.glob("*.cwasm"))) == 2
        finally:
            for engine in engines:
                engine.close()

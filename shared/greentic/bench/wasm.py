"""The numbers behind `greentic bench wasm`: what a component call costs through the host
compared with a bare wasmtime-py call of the same component, in the same run."""

import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component, Linker

from greentic.component.build import NoSecrets, build
from greentic.component.engine import WASMTIME_VERSION, ComponentEngine
from greentic.component.host import ComponentHost
from greentic.interfaces.values import record
from greentic.state.store import MemoryStateStore
from greentic.types.component import ComponentCapabilities, ComponentLimits, ComponentManifest
from greentic.types.tenant import TenantCtx

TENANT = TenantCtx("dev", "bench", "bench")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1e6,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6)


def _timed(function: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def _bare(engine: wasmtime.Engine, component: Component, wasi: bool) -> Callable[[], Any]:
    linker = Linker(engine)
    if wasi:
        linker.add_wasip2()

    def instantiate() -> tuple[wasmtime.Store, Any]:
        store = wasmtime.Store(engine)
        store.set_fuel(10**12)
        store.set_epoch_deadline(10**9)
        if wasi:
            store.set_wasi(wasmtime.WasiConfig())
        return store, linker.instantiate(store, component)

    return instantiate


def run_wasm_bench(examples: Path, calls: int = 2000,
                   progress: Callable[[str], None] = lambda _m: None) -> Iterator[str]:
    """Yield the lines of a Markdown report (machine, then one table)."""
    cache = Path(".greentic/cache/builds")
    guests = {}
    for name in ("tiny", "echo"):
        progress(f"building {name} (cached by source hash) …")
        guests[name] = build(examples / name, Path(tempfile.mkdtemp()) / f"{name}.wasm", cache)
    message = record(id="m1", content="hello bench", sender="u", timestamp=0)
    yield (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
           f"{platform.python_version()}, wasmtime-py {WASMTIME_VERSION}")
    yield ""
    yield ("| component | size | cold load (compile) | cached load (deserialize) | "
           "instantiate p50 | bare call p50 / p99 | host call p50 / p99 (same thread) | "
           "host call p50 / p99 (thread pool) | host call, fresh instance p50 | "
           "calls/s 1 thread | calls/s 2 threads |")
    yield "|---|---|---|---|---|---|---|---|---|---|---|"
    for name, path in guests.items():
        data = path.read_bytes()
        wasi = name != "tiny"
        n = calls if name == "tiny" else max(200, calls // 4)
        with tempfile.TemporaryDirectory() as cache_dir:
            engine = ComponentEngine(cache_dir)
            progress(f"{name}: cold compile …")
            started = time.perf_counter()
            engine.compile(name, data)
            cold = time.perf_counter() - started
            started = time.perf_counter()
            component = engine.compile(name, data)
            cached = time.perf_counter() - started
            instantiate = _bare(engine.engine, component, wasi)
            progress(f"{name}: instantiate and bare calls …")
            inst_p50, _ = _percentiles(_timed(instantiate, max(50, n // 10)))
            store, instance = instantiate()
            execute = instance.get_func(store, "execute")
            bare = _percentiles(_timed(lambda: execute(store, message), n))  # noqa: B023

            progress(f"{name}: host calls …")
            host_row = asyncio.run(_host_numbers(engine, data, name, n))
            engine.close()
        yield (f"| {name} | {len(data) / 1024:,.0f} KiB | {cold * 1000:,.0f} ms | "
               f"{cached * 1000:,.1f} ms | {inst_p50:,.0f} µs | "
               f"{bare[0]:,.0f} / {bare[1]:,.0f} µs | "
               f"{host_row['sync'][0]:,.0f} / {host_row['sync'][1]:,.0f} µs | "
               f"{host_row['pool'][0]:,.0f} / {host_row['pool'][1]:,.0f} µs | "
               f"{host_row['fresh']:,.0f} µs | {host_row['tput1']:,.0f} | "
               f"{host_row['tput2']:,.0f} |")
    yield ""
    yield ("bare = wasmtime-py `func(store, message)` on a reused instance; host = "
           "`ComponentHost` with `reuse: conversation` (fuel and epoch deadline set per call, "
           "instance taken from and returned to the per-conversation pool); thread pool = the "
           "async path flows use (`run_in_executor`); fresh instance = the default "
           "`reuse: none`. calls/s: 8 conversations calling concurrently, reused instances.")


async def _host_numbers(engine: ComponentEngine, data: bytes, name: str,
                        n: int) -> dict[str, Any]:
    reuse = ComponentManifest(id=name, capabilities=ComponentCapabilities(
        limits=ComponentLimits(reuse="conversation")))
    fresh = ComponentManifest(id=name)
    result: dict[str, Any] = {}
    host = ComponentHost(engine, MemoryStateStore(), NoSecrets(), threads=1)
    host.loop = asyncio.get_running_loop()
    loaded = host.load(reuse, data)
    message = record(id="m1", content="hello bench", sender="u", timestamp=0)

    def body(live: Any) -> Any:
        return live.funcs["execute"](live.store, message)

    host.call_sync(loaded, TENANT, "c0", body)
    result["sync"] = _percentiles(_timed(lambda: host.call_sync(loaded, TENANT, "c0", body), n))
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await host.execute(loaded, TENANT, "c0", id="m", content="hello", sender="u",
                           timestamp=0)
        samples.append(time.perf_counter() - started)
    result["pool"] = _percentiles(samples)
    loaded_fresh = host.load(fresh, data)
    result["fresh"] = _percentiles(_timed(
        lambda: host.call_sync(loaded_fresh, TENANT, "c0", body), max(50, n // 10)))[0]
    host.close()
    for threads in (1, 2):
        host = ComponentHost(engine, MemoryStateStore(), NoSecrets(), threads=threads)
        loaded = host.load(reuse, data)
        per_conversation = max(20, n // 8)

        async def converse(conversation: str, host: ComponentHost = host,
                           loaded: Any = loaded, count: int = per_conversation) -> None:
            for _ in range(count):
                await host.execute(loaded, TENANT, conversation, id="m", content="hello",
                                   sender="u", timestamp=0)

        await asyncio.gather(*(converse(f"c{i}", count=1) for i in range(8)))  # warm
        started = time.perf_counter()
        await asyncio.gather(*(converse(f"c{i}") for i in range(8)))
        result[f"tput{threads}"] = 8 * per_conversation / (time.perf_counter() - started)
        host.close()
    return result

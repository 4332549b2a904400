"""The machine's own speed-up for `bench scale`: the bench component called bare (wasmtime-py,
no platform) in one process, then in N processes at once. On a shared or virtual machine two
busy cores rarely give 2x; the platform's scaling reads against this figure."""

import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component, Linker

from greentic.component.engine import ComponentEngine
from greentic.interfaces.values import record


def _call_repeatedly(path: str, calls: int, fuel: bool, start: Any = None) -> float:
    """Seconds for `calls` calls of the component's `execute` on one reused instance, on an
    engine configured like the executors' (fuel metering as they have it, epoch deadline);
    the timed calls begin when every process reached `start` (a barrier)."""
    engine = ComponentEngine(fuel=fuel)
    component = Component.from_file(engine.engine, path)
    store = wasmtime.Store(engine.engine)
    if fuel:
        store.set_fuel(10**15)
    store.set_epoch_deadline(10**9)
    execute = Linker(engine.engine).instantiate(store, component).get_func(store, "execute")
    message = record(id="m1", content="ceiling", sender="bench", timestamp=0)
    execute(store, message)  # warm
    if start is not None:
        start.wait()
    started = time.perf_counter()
    with engine.running():
        for _ in range(calls):
            execute(store, message)
    elapsed = time.perf_counter() - started
    engine.close()
    return elapsed


def machine_speedup(component: Path, processes: int, calls: int, fuel: bool,
                    rounds: int = 3) -> float:
    """Calls/s of `processes` processes calling at once over calls/s of one alone; alone and
    together alternate `rounds` times and the medians count (a shared host is noisy)."""
    spawn = multiprocessing.get_context("spawn")  # not fork: the caller runs an event loop
    paths, fuels = [str(component)] * processes, [fuel] * processes
    alone, together = [], []
    with spawn.Manager() as manager, ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        list(pool.map(_call_repeatedly, paths, [1] * processes, fuels))  # all started and warm
        for _ in range(rounds):
            alone.append(pool.submit(_call_repeatedly, paths[0], calls, fuel).result())
            start = manager.Barrier(processes)
            together.append(max(pool.map(_call_repeatedly, paths, [calls] * processes, fuels,
                                         [start] * processes)))
    return processes * statistics.median(alone) / statistics.median(together)

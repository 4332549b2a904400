"""One wasmtime Engine per process with fuel and epoch interruption, its ticker thread, and
the on-disk cache of compiled components (compiling an 18 MB guest takes seconds; loading
its serialized form ~0.1 s).

The ticker advances the epoch only while a call runs (`running()`): an idle executor's ticker
sleeps instead of taking the GIL 200 times a second away from the event loop."""

import atexit
import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import structlog
import wasmtime
from wasmtime.component import Component

from greentic.errors import ComponentLoadError

log = structlog.get_logger(__name__)

TICK_MS = 5
"""Epoch ticker period: deadlines are accurate to about this."""
WASMTIME_VERSION = version("wasmtime")


def sha256(data: bytes) -> str:
    """Hex sha256: the name of a component's bytes everywhere (object store, cache)."""
    return hashlib.sha256(data).hexdigest()


class ComponentEngine:
    """The process's wasmtime Engine; `compile` goes through the disk cache."""

    _instance: "ComponentEngine | None" = None
    _lock = threading.Lock()

    def __init__(self, cache_dir: str | Path | None = None, fuel: bool = True) -> None:
        config = wasmtime.Config()
        config.consume_fuel = fuel
        self.fuel = fuel
        """Fuel metering on: a manifest's `fuel` limit applies (it costs CPU-bound guest code
        up to ~2x; the epoch deadline bounds every call either way)."""
        config.epoch_interruption = True
        config.wasm_component_model = True
        self.engine = wasmtime.Engine(config)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cold_compiles = 0
        self.cache_hits = 0
        self._stop = threading.Event()
        self._busy = threading.Event()  # set while any call runs
        self._calls = 0
        self._calls_lock = threading.Lock()
        self._ticker = threading.Thread(target=self._tick, name="wasm-epoch", daemon=True)
        self._ticker.start()
        atexit.register(self.close)  # stop ticking before the interpreter tears wasmtime down

    @classmethod
    def shared(cls, cache_dir: str | Path | None = None, fuel: bool = True) -> "ComponentEngine":
        """The one engine of this process (created on first use)."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(cache_dir, fuel)
            elif cls._instance.fuel != fuel:
                log.warning("the process's wasm engine already exists with other fuel metering;"
                            " keeping it", fuel=cls._instance.fuel, asked=fuel)
            elif cache_dir and cls._instance.cache_dir is None:
                cls._instance.cache_dir = Path(cache_dir)
            return cls._instance

    def _tick(self) -> None:
        while not self._stop.is_set():
            self._busy.wait()
            if self._stop.wait(TICK_MS / 1000):
                return
            self.engine.increment_epoch()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around guest code (instantiation and calls): the epoch ticks meanwhile, so a
        deadline set just before fires about on time."""
        with self._calls_lock:
            self._calls += 1
            self._busy.set()
        try:
            yield
        finally:
            with self._calls_lock:
                self._calls -= 1
                if not self._calls:
                    self._busy.clear()

    def ticks(self, timeout_ms: int) -> int:
        """Epoch ticks for a deadline of `timeout_ms` (at least one)."""
        return max(1, -(-timeout_ms // TICK_MS))

    def close(self) -> None:
        """Stop the epoch ticker (idempotent)."""
        self._stop.set()
        self._busy.set()
        if self._ticker.is_alive() and threading.current_thread() is not self._ticker:
            self._ticker.join(timeout=1)

    def _cache_path(self, digest: str) -> Path | None:
        if self.cache_dir is None:
            return None
        # code compiled with fuel metering does not load into an engine without it
        metering = "" if self.fuel else "-nofuel"
        return self.cache_dir / f"{digest}-wasmtime{WASMTIME_VERSION}{metering}.cwasm"

    def compile(self, name: str, data: bytes, digest: str | None = None) -> Component:
        """The compiled component for `data`: from the cache when present, else compiled and
        stored. Blocking (seconds when cold): call it from a worker thread."""
        digest = digest or sha256(data)
        path = self._cache_path(digest)
        if path is not None and path.exists():
            try:
                component = Component.deserialize_file(self.engine, str(path))
                self.cache_hits += 1
                return component
            except wasmtime.WasmtimeError as exc:  # other engine settings, a torn file
                log.warning("compile cache entry unusable; recompiling", path=str(path),
                            error=str(exc).splitlines()[0])
        try:
            component = Component(self.engine, data)
        except wasmtime.WasmtimeError as exc:
            raise ComponentLoadError(name, f"not a valid component: "
                                           f"{str(exc).splitlines()[0]}") from None
        self.cold_compiles += 1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(component.serialize())
            os.replace(tmp, path)  # atomic: a concurrent reader sees all or nothing
        return component

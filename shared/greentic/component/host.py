"""The component host: load (detect world, check imports, link), then call under limits.

Every call runs in a bounded thread pool (wasm runs without the GIL, so the asyncio loop keeps
serving other conversations; free threads go to waiting tenants in turn) with a fresh fuel
budget, an epoch deadline, a memory cap and an output-size cap. A call that traps, times out or
hits a limit drops its Store. Instances are fresh per call unless
the manifest asks for `reuse: conversation`, in which case one is kept per tenant +
conversation: guest memory is never seen by another conversation or tenant.
"""

import asyncio
import concurrent.futures
import hashlib
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener, urlopen

import structlog
import wasmtime
from wasmtime.component import Component, Instance, Linker

from greentic.component.engine import ComponentEngine, sha256
from greentic.component.fair import FairSlots
from greentic.component.node import NodeAdapter, NodeCall, node_adapter
from greentic.errors import ComponentError, ComponentLoadError, ConfigError, GreenticError
from greentic.interfaces.host_imports import DEFINERS, HostDenied, define_host_imports
from greentic.interfaces.values import record
from greentic.interfaces.wit import (
    ALWAYS_GRANTED,
    HOST_IMPORTS,
    MCP_EXPORT,
    NODE_EXPORTS,
    PROVIDER_EXPORTS,
    PROVIDER_REFUSED_IMPORTS,
    SEED_EXPORT,
    TYPE_ONLY_IMPORTS,
    WASI_PREFIXES,
)
from greentic.secrets import SecretsProvider
from greentic.state.store import StateKey, StateStore
from greentic.types.component import ComponentManifest, World
from greentic.types.tenant import TenantCtx

log = structlog.get_logger(__name__)
T = TypeVar("T")

POOL_PER_COMPONENT = 32
"""Idle instances kept per component when reuse is on (least recently used go first)."""
HOST_CALL_TIMEOUT_S = 5.0
"""Longest a host import (state, HTTP) may block the guest."""
STDERR_KEEP = 4096
GUEST_LOG_LINES_PER_CALL = 100
"""Log lines one call may write; later ones are counted and reported once, not written."""
HTTP_MAX_BYTES = 1 << 20
PROVIDER_FUNCTIONS = tuple(zip(PROVIDER_EXPORTS, (("describe",), ("handle-webhook",),
                                                  ("encode", "classify")), strict=True))

_current = threading.local()
_PYTHON_ERROR = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")
"""The exception line of a Python guest's traceback on stderr."""


def _current_services() -> "CallServices":
    services = getattr(_current, "services", None)
    if services is None:
        raise HostDenied("unavailable", "host import called outside a component call")
    return services


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


_KEY_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,128}")


def state_name(name: str) -> str:
    """A guest's state key as one key token: itself when safe, else `h-` + 32 hex of its
    sha256 (Greentic's components name keys like paths, `config/email/from`)."""
    if _KEY_TOKEN.fullmatch(name):
        return name
    return "h-" + hashlib.sha256(name.encode()).hexdigest()[:32]


def detect_world(exports: set[str]) -> World | None:
    """Which world a component exports (seed, node — 0.6.0 or 0.5.0 —, mcp or provider)."""
    if any(export in exports for export in NODE_EXPORTS):
        return "node"
    if MCP_EXPORT in exports:
        return "mcp"
    if any(export in exports for export in PROVIDER_EXPORTS):
        return "provider"
    if SEED_EXPORT in exports:
        return "seed"
    return None


def check_provider(manifest: ComponentManifest, exports: set[str], imports: list[str]) -> None:
    """A provider exports all of its world and makes no request itself (the host does):
    ComponentLoadError naming the missing export or the refused import."""
    missing = [name for name in PROVIDER_EXPORTS if name not in exports]
    if missing:
        raise ComponentLoadError(manifest.id, "is a provider but does not export "
                                 + ", ".join(missing))
    refused = [name for name in imports if name.startswith(PROVIDER_REFUSED_IMPORTS)]
    if refused:
        raise ComponentLoadError(
            manifest.id, "is a provider and imports " + ", ".join(refused) + ": providers "
            "may not make requests themselves (the host sends what egress.encode returns)",
            missing=tuple(refused))


def check_imports(manifest: ComponentManifest, imports: list[str]) -> set[str]:
    """The host interfaces to link; raises ComponentLoadError listing what is missing or
    undeclared."""
    granted = set(manifest.capabilities.host)
    missing, undeclared, link = [], [], set()
    for name in imports:
        if name.startswith(WASI_PREFIXES) or name in TYPE_ONLY_IMPORTS:
            continue
        if name in ALWAYS_GRANTED:
            link.add(name)
        elif name in HOST_IMPORTS:
            if HOST_IMPORTS[name] in granted:
                link.add(name)
            else:
                undeclared.append(name)
        else:
            missing.append(name)
    if missing:
        raise ComponentLoadError(manifest.id, "imports what this host does not offer: "
                                 + ", ".join(missing), missing=tuple(missing))
    if undeclared:
        needed = sorted({HOST_IMPORTS[n] for n in undeclared})
        raise ComponentLoadError(
            manifest.id, f"imports {', '.join(undeclared)} but its manifest does not declare "
            f"it (add {needed} to capabilities.host)", undeclared=tuple(undeclared))
    return link


@dataclass
class Live:
    """One instance with its own Store (never shared across tenants or conversations)."""

    store: wasmtime.Store
    instance: Instance
    funcs: dict[str, Any]
    stderr: deque = field(default_factory=lambda: deque(maxlen=STDERR_KEEP))


@dataclass
class LoadedComponent:
    """A compiled, linked component ready to be called."""

    manifest: ComponentManifest
    digest: str
    world: World
    component: Component
    linker: Linker
    imports: tuple[str, ...]
    size: int
    host_calls: bool = True
    """False when the component imports no host interface: calls skip setting up services."""
    node: NodeAdapter | None = None
    """The node world's adapter (0.6.0 or 0.5.0), chosen from the exports at load."""
    node_functions: tuple[str, ...] = ()
    """The adapter's functions the component exports (invoke always; describe when built)."""
    _pool: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return self.manifest.id

    def _take(self, key: tuple | None) -> Live | None:
        if key is None:
            return None
        with self._lock:
            return self._pool.pop(key, None)

    def _give_back(self, key: tuple, live: Live) -> None:
        with self._lock:
            self._pool[key] = live
            while len(self._pool) > POOL_PER_COMPONENT:
                self._pool.popitem(last=False)

    def idle_instances(self) -> int:
        with self._lock:
            return len(self._pool)


class CallServices:
    """What the host imports may do during one call: scoped to its tenant and conversation,
    limited to the manifest's grants."""

    def __init__(self, host: "ComponentHost", loaded: LoadedComponent, tenant: TenantCtx,
                 conversation: str) -> None:
        self.host = host
        self.loaded = loaded
        self.tenant = tenant
        self.conversation = conversation
        self.timeout_s = min(HOST_CALL_TIMEOUT_S,
                             loaded.manifest.capabilities.limits.timeout_ms / 1000)
        self.log_lines = 0

    def _await(self, coroutine: Any) -> Any:
        loop = self.host.loop
        if loop is None or loop.is_closed() or _on_loop_thread(loop):
            coroutine.close()
            raise HostDenied("unavailable", "host calls need the event loop free (call "
                             "components through ComponentHost.run, not on the loop thread)")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(self.timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise HostDenied("unavailable", f"host call took longer than {self.timeout_s:g} s"
                             ) from None

    def _key(self, name: str) -> StateKey:
        return StateKey(self.tenant, "conversation", self.conversation, state_name(name))

    def state_get(self, name: str) -> bytes | None:
        return self._await(self.host.state.get(self._key(name)))

    def state_set(self, name: str, value: bytes) -> None:
        self._await(self.host.state.set(self._key(name), value))

    def state_delete(self, name: str) -> None:
        self._await(self.host.state.delete(self._key(name)))

    def secret(self, name: str) -> bytes | None:
        if name not in self.loaded.manifest.capabilities.secrets:
            raise HostDenied("permission-denied",
                             f"secret {name!r} is not declared in the component's manifest")
        try:
            return self.host.secrets.get(self.tenant, name)
        except ConfigError as exc:  # a name the provider cannot scope to this tenant
            raise HostDenied("permission-denied", str(exc)) from None

    def log(self, level: str, message: str, fields: dict[str, str] | None = None) -> None:
        self.log_lines += 1
        if self.log_lines > GUEST_LOG_LINES_PER_CALL:
            return
        method = getattr(log, "warning" if level == "warn" else level, log.info)
        method(message[:2000], **{f"guest_{k}": v for k, v in (fields or {}).items()},
               component=self.loaded.id, tenant=self.tenant.tenant,
               conversation=self.conversation, source="guest")

    def check_http_url(self, url: str) -> None:
        """HostDenied unless `url` is http(s) to a host in the manifest's `http_hosts`."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or \
                parts.hostname not in self.loaded.manifest.capabilities.http_hosts:
            raise HostDenied("permission-denied",
                             f"host {parts.hostname!r} is not in the manifest's http_hosts")

    def http_get(self, url: str) -> tuple[int, str]:
        self.check_http_url(url)
        try:
            with urlopen(url, timeout=self.timeout_s) as response:  # scheme checked above
                return response.status, response.read(HTTP_MAX_BYTES).decode("utf-8", "replace")
        except OSError as exc:
            raise GreenticError(f"GET {url} failed: {exc}") from None

    def http_send(self, method: str, url: str, headers: list[tuple[str, str]],
                  body: bytes | None, timeout_ms: int | None, follow_redirects: bool
                  ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Greentic's http-client `send`: policy-checked (every redirect hop too), bounded by
        the call's host timeout, at most HTTP_MAX_BYTES of body; 4xx/5xx are answers."""
        self.check_http_url(url)
        timeout = self.timeout_s if not timeout_ms else min(self.timeout_s, timeout_ms / 1000)
        request = Request(url, data=body, method=method.upper() or "GET")
        for name, value in headers:
            request.add_header(name, value)
        opener = build_opener(_CheckedRedirects(self) if follow_redirects else _NoRedirects())
        try:
            with opener.open(request, timeout=timeout) as response:
                return (response.status, list(response.headers.items()),
                        response.read(HTTP_MAX_BYTES))
        except HTTPError as exc:  # an HTTP answer (or an unfollowed redirect), not a failure
            with exc:
                return exc.code, list(exc.headers.items()), exc.read(HTTP_MAX_BYTES)
        except TimeoutError:
            raise HostDenied("timeout", f"{method} {url} took longer than {timeout:g} s"
                             ) from None
        except OSError as exc:
            raise GreenticError(f"{method} {url} failed: {exc}") from None


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *_args: Any) -> None:
        return None  # the 3xx is handed to the guest as it is


class _CheckedRedirects(HTTPRedirectHandler):
    def __init__(self, services: CallServices) -> None:
        self.services = services

    def redirect_request(self, request: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        self.services.check_http_url(newurl)
        return super().redirect_request(request, fp, code, msg, headers, newurl)


class ComponentHost:
    """Loads components and runs their calls under limits in a bounded thread pool."""

    def __init__(self, engine: ComponentEngine, state: StateStore, secrets: SecretsProvider,
                 threads: int = 2) -> None:
        self.engine = engine
        self.state = state
        self.secrets = secrets
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wasm")
        self._slots = FairSlots(threads)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # loading

    def load(self, manifest: ComponentManifest, data: bytes,
             digest: str | None = None) -> LoadedComponent:
        """Compile (through the cache), detect the world, check imports, link. Blocking."""
        digest = digest or sha256(data)
        component = self.engine.compile(manifest.id, data, digest)
        return self.link(manifest, component, digest, len(data))

    def link(self, manifest: ComponentManifest, component: Component, digest: str,
             size: int) -> LoadedComponent:
        """`load` of an already compiled component: detect the world, check imports, link."""
        engine = self.engine.engine
        component_type = component.type
        imports = list(component_type.imports(engine))
        exported = component_type.exports(engine)
        exports = set(exported)
        world = detect_world(exports)
        if world is None:
            raise ComponentLoadError(manifest.id, "exports neither the seed world (execute), "
                                     f"{' / '.join(NODE_EXPORTS)}, {MCP_EXPORT} nor "
                                     f"{' / '.join(PROVIDER_EXPORTS)}")
        if world != manifest.world:
            raise ComponentLoadError(manifest.id, f"exports the {world} world but its manifest "
                                     f"says {manifest.world}")
        node = node_adapter(exports) if world == "node" else None
        node_functions: tuple[str, ...] = ()
        if node is not None:
            offered = set(exported[node.export].ty.exports(engine))
            node_functions = tuple(name for name in node.functions if name in offered)
            if node.functions[0] not in offered:
                raise ComponentLoadError(manifest.id, f"exports {node.export} without its "
                                         f"{node.functions[0]} function")
        if world == "provider":
            check_provider(manifest, exports, imports)
        linked = check_imports(manifest, imports)
        linker = Linker(engine)
        if any(name.startswith(WASI_PREFIXES) for name in imports):
            linker.add_wasip2()
        define_host_imports(linker, {n for n in linked if n in DEFINERS}, _current_services)
        return LoadedComponent(manifest, digest, world, component, linker, tuple(imports),
                               size, host_calls=bool(linked - set(ALWAYS_GRANTED)),
                               node=node, node_functions=node_functions)

    async def load_async(self, manifest: ComponentManifest, data: bytes,
                         digest: str | None = None) -> LoadedComponent:
        """`load` in a worker thread (a cold compile takes seconds)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self.load, manifest, data, digest)

    # calls

    def _instantiate(self, loaded: LoadedComponent) -> Live:
        limits = loaded.manifest.capabilities.limits
        store = wasmtime.Store(self.engine.engine)
        store.set_limits(memory_size=limits.memory_mib * 1024 * 1024)
        if self.engine.fuel:
            store.set_fuel(limits.fuel)
        store.set_epoch_deadline(self.engine.ticks(limits.timeout_ms))
        stderr: deque = deque(maxlen=STDERR_KEEP)
        if any(name.startswith(WASI_PREFIXES) for name in loaded.imports):
            wasi = wasmtime.WasiConfig()
            wasi.stderr_custom = lambda data: stderr.extend(data) or len(data)
            wasi.stdout_custom = len  # discarded; chat output goes through return values
            store.set_wasi(wasi)
        instance = loaded.linker.instantiate(store, loaded.component)
        funcs: dict[str, Any] = {}
        if loaded.world == "seed":
            funcs["execute"] = instance.get_func(store, "execute")
        elif loaded.world == "provider":
            for export, names in PROVIDER_FUNCTIONS:
                index = instance.get_export_index(store, export)
                for name in names:
                    funcs[name] = instance.get_func(
                        store, instance.get_export_index(store, name, index))
        else:
            node = loaded.node
            export, names = ((node.export, loaded.node_functions) if node is not None
                             else (MCP_EXPORT, ("call-tool", "list-tools")))
            index = instance.get_export_index(store, export)
            for name in names:
                funcs[name] = instance.get_func(store, instance.get_export_index(store, name,
                                                                                  index))
        return Live(store, instance, funcs, stderr)

    def call_sync(self, loaded: LoadedComponent, tenant: TenantCtx, conversation: str,
                  body: Callable[[Live], T], services: "CallServices | None" = None) -> T:
        """Run `body` on an instance for this tenant + conversation, under the limits
        (`services`: what its host imports may do, by default scoped to the tenant +
        conversation)."""
        limits = loaded.manifest.capabilities.limits
        # a provider's instance is never reused: one channel's call never sees another's
        key = ((tenant.env, tenant.tenant, tenant.team, conversation)
               if limits.reuse == "conversation" and loaded.world != "provider" else None)
        if not loaded.host_calls:
            services = None
        elif services is None:
            services = CallServices(self, loaded, tenant, conversation)
        _current.services = services
        live: Live | None = None
        started = time.monotonic()
        try:
            with self.engine.running():
                live = loaded._take(key)
                if live is None:
                    live = self._instantiate(loaded)
                live.stderr.clear()
                if self.engine.fuel:
                    live.store.set_fuel(limits.fuel)
                live.store.set_epoch_deadline(self.engine.ticks(limits.timeout_ms))
                result = body(live)
        except ComponentError:
            raise
        except Exception as exc:  # a trap poisons the Store: it is dropped here
            raise self._classify(loaded, exc, live, time.monotonic() - started) from None
        finally:
            _current.services = None
            if services is not None and services.log_lines > GUEST_LOG_LINES_PER_CALL:
                log.warning("guest log lines dropped", component=loaded.id,
                            tenant=tenant.tenant, conversation=conversation,
                            written=GUEST_LOG_LINES_PER_CALL,
                            dropped=services.log_lines - GUEST_LOG_LINES_PER_CALL)
        if key is not None:
            loaded._give_back(key, live)
        return result

    def _classify(self, loaded: LoadedComponent, exc: Exception, live: Live | None,
                  elapsed_s: float) -> ComponentError:
        limits = loaded.manifest.capabilities.limits
        if isinstance(exc, HostDenied):
            return ComponentError(exc.code, str(exc))
        text = str(exc)
        guest = bytes(live.stderr).decode("utf-8", "replace") if live else ""
        cause = next((line.strip() for line in reversed(text.splitlines()) if line.strip()),
                     type(exc).__name__)
        guest_line = next((line.strip() for line in reversed(guest.splitlines())
                           if _PYTHON_ERROR.match(line.strip())), "")
        if "wasm trap: interrupt" in text:
            error = ComponentError("timeout", f"timeout after {limits.timeout_ms} ms")
        elif "call stack exhausted" in text:
            error = ComponentError("trap", "trap: call stack exhausted (recursion too deep)")
        elif "all fuel consumed" in text:
            error = ComponentError("fuel", f"fuel exhausted ({limits.fuel} units)")
        elif ("MemoryError" in guest or "memory allocation" in text
              or "exceeds memory limits" in text or "out of memory" in text.lower()):
            error = ComponentError("memory", f"memory limit {limits.memory_mib} MiB exceeded")
        elif isinstance(exc, wasmtime.WasmtimeError):
            detail = f"{cause}: {guest_line}" if guest_line else cause
            error = ComponentError("trap", f"trap: {detail}")
        else:
            error = ComponentError("bad-input", f"{type(exc).__name__}: {exc}")
        log.warning("component call failed; instance discarded", component=loaded.id,
                    code=error.code, error=error.message, elapsed_ms=round(elapsed_s * 1000))
        return error

    async def run(self, loaded: LoadedComponent, tenant: TenantCtx, conversation: str,
                  body: Callable[[Live], T], services: "CallServices | None" = None) -> T:
        """`call_sync` in the bounded thread pool (the asyncio loop keeps running); a thread
        that frees up goes to the waiting tenants in turn."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        async with self._slots.slot((tenant.env, tenant.tenant)):
            return await self.loop.run_in_executor(self._pool, self.call_sync, loaded, tenant,
                                                   conversation, body, services)

    def check_output(self, loaded: LoadedComponent, *outputs: str | bytes | None) -> None:
        """ComponentError `output-too-large` when the results add up to more than the
        component's `max_output_bytes`."""
        limit = loaded.manifest.capabilities.limits.max_output_bytes
        size = sum(len(o) if isinstance(o, bytes) or o.isascii() else len(o.encode())
                   for o in outputs if o)
        if size > limit:
            log.warning("component output refused", component=loaded.id, size=size,
                        limit=limit)
            raise ComponentError("output-too-large", f"output of {size} bytes is over the "
                                 f"limit of {limit} (limits.max_output_bytes)")

    async def execute(self, loaded: LoadedComponent, tenant: TenantCtx, conversation: str,
                      *, id: str, content: str, sender: str, timestamp: int) -> str:
        """Seed world: `execute(message) -> outcome`; a failed outcome raises ComponentError."""
        message = record(id=id, content=content, sender=sender, timestamp=timestamp)

        def body(live: Live) -> Any:
            return live.funcs["execute"](live.store, message)

        outcome = await self.run(loaded, tenant, conversation, body)
        self.check_output(loaded, outcome.data, outcome.error)
        if not outcome.success:
            raise ComponentError("guest", outcome.error or "the component reported failure")
        return outcome.data or ""

    async def invoke(self, loaded: LoadedComponent, tenant: TenantCtx, conversation: str,
                     op: str, payload: Any, *, flow_id: str = "", step_id: str = "",
                     trace_id: str = "", i18n_id: str = "", attempt: int = 0,
                     provider_id: str = "", envelope: bool = True, by_name: bool = False
                     ) -> Any:
        """Node world (0.6.0 or 0.5.0, whichever the component exports): operation `op` with
        `payload` (a node's input, any JSON-like value); returns the decoded output or raises
        ComponentError with the guest's `node-error` code and message.

        Both get what Greentic's runner sends a flow node (`greentic.component.invocation`):
        `payload` is the node's fields without `component`/`operation`; for a `component.exec`
        node only its `input` and `config` reach the component, for a node naming its
        component (`by_name`) all of them; `envelope=False` sends the payload as it is. 0.5.0
        gets the InvocationEnvelope's JSON, 0.6.0 its payload unwrapped, as CBOR."""
        operations = loaded.manifest.operations
        if operations and op not in operations:
            raise ComponentError("not-found", f"component {loaded.id!r} has no operation "
                                 f"{op!r} (has {', '.join(operations)})")
        node = loaded.node
        if node is None:
            raise ComponentError("bad-input", f"component {loaded.id!r} is not a node "
                                 f"component (world {loaded.world})")
        limits = loaded.manifest.capabilities.limits
        arguments = node.arguments(NodeCall(
            tenant, conversation, op, payload, loaded.id, flow_id=flow_id, step_id=step_id,
            trace_id=trace_id, i18n_id=i18n_id, attempt=attempt,
            deadline_ms=int(time.time() * 1000) + limits.timeout_ms, provider_id=provider_id,
            envelope=envelope, by_name=by_name))

        def body(live: Live) -> Any:
            return live.funcs["invoke"](live.store, *arguments)

        result = await self.run(loaded, tenant, conversation, body)
        return node.output(result, lambda *outputs: self.check_output(loaded, *outputs))

    def describe_node(self, loaded: LoadedComponent) -> dict[str, Any]:
        """Name, version and operations a node component reports about itself. Blocking."""
        if loaded.node is None:
            raise ComponentError("bad-input", f"component {loaded.id!r} is not a node component")
        node = loaded.node
        return self.call_sync(loaded, TenantCtx("dev", "describe", "describe"), "describe",
                              lambda live: node.describe(live.funcs, live.store))

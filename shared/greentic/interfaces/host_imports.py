"""The host side of the imports guests may have: Greentic's state and secrets stores, its
http-client and telemetry logger, our own state/secrets/log/http interfaces, and `control`.

Every function asks `current()` for the call in progress (a `HostServices`), so one linker per
component serves every tenant: the tenant, conversation and grants come from the call, never
from the guest.
"""

from collections.abc import Callable
from typing import Any, Protocol

from wasmtime.component import Linker, LinkerInstance, Variant

from greentic.errors import GreenticError
from greentic.interfaces.values import field, record
from greentic.types.tenant import TenantCtx

LOG_LEVELS = ("debug", "info", "warn", "error")


class HostDenied(GreenticError):
    """A guest asked for something its call may not have (another tenant, an undeclared secret)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class HostServices(Protocol):
    """What one call may do; implemented by the component host, scoped to one tenant."""

    tenant: TenantCtx

    def state_get(self, name: str) -> bytes | None: ...

    def state_set(self, name: str, value: bytes) -> None: ...

    def state_delete(self, name: str) -> None: ...

    def secret(self, name: str) -> bytes | None: ...

    def log(self, level: str, message: str, fields: dict[str, str] | None = None) -> None: ...

    def http_get(self, url: str) -> tuple[int, str]: ...

    def http_send(self, method: str, url: str, headers: list[tuple[str, str]],
                  body: bytes | None, timeout_ms: int | None, follow_redirects: bool
                  ) -> tuple[int, list[tuple[str, str]], bytes]: ...


Current = Callable[[], HostServices]


def _host_error(code: str, message: str) -> Any:
    return record(code=code, message=message)


def _check_greentic_ctx(services: HostServices, ctx: Any) -> None:
    """A guest may pass a tenant-ctx; it must name the calling tenant (or nothing)."""
    if ctx is None:
        return
    own = services.tenant
    for name in ("tenant", "tenant-id"):
        value = field(ctx, name)
        if value and value != own.tenant:
            raise HostDenied("permission-denied",
                             f"state of tenant {value!r} is not readable from tenant "
                             f"{own.tenant!r}")
    env = field(ctx, "env")
    if env and env != own.env:
        raise HostDenied("permission-denied", f"state of env {env!r} is not readable")


def _guarded(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except HostDenied as exc:
        return _host_error(exc.code, str(exc))
    except GreenticError as exc:
        return _host_error("invalid-input", str(exc))


def _greentic_state(instance: LinkerInstance, current: Current) -> None:
    def read(_store: Any, key: str, ctx: Any) -> Any:
        def run() -> Any:
            services = current()
            _check_greentic_ctx(services, ctx)
            value = services.state_get(key)
            return _host_error("not-found", f"no state {key!r}") if value is None else value
        return _guarded(run)

    def write(_store: Any, key: str, data: bytes, ctx: Any) -> Any:
        def run() -> Any:
            services = current()
            _check_greentic_ctx(services, ctx)
            services.state_set(key, bytes(data))
            return "ok"
        return _guarded(run)

    def delete(_store: Any, key: str, ctx: Any) -> Any:
        def run() -> Any:
            services = current()
            _check_greentic_ctx(services, ctx)
            services.state_delete(key)
            return "ok"
        return _guarded(run)

    instance.add_func("read", read)
    instance.add_func("write", write)
    instance.add_func("delete", delete)


def _greentic_secrets(instance: LinkerInstance, current: Current) -> None:
    def read(_store: Any, name: str) -> Any:
        def run() -> Any:
            value = current().secret(name)
            return _host_error("not-found", f"no secret {name!r}") if value is None else value
        return _guarded(run)

    def refuse(_store: Any, name: str, *_: Any) -> Any:
        return _host_error("permission-denied", "components cannot change secrets")

    instance.add_func("read", read)
    instance.add_func("write", refuse)
    instance.add_func("delete", refuse)


def _greentic_secrets_store(instance: LinkerInstance, current: Current) -> None:
    """`greentic:secrets-store@1.0.0`: `get` answers none for a missing secret and `denied` for
    one the manifest does not declare (the guest sees its error, not a trap)."""
    def get(_store: Any, key: str) -> Any:
        try:
            return current().secret(key)
        except HostDenied as exc:
            return Variant("err", "denied" if exc.code == "permission-denied" else "internal")
        except GreenticError:
            return Variant("err", "invalid-key")

    instance.add_func("get", get)


HTTP_ERROR_CODES = {"permission-denied": "denied"}
"""Our refusal codes in Greentic's http-client spelling (its runner answers `denied`)."""


def _http_send(current: Current, request: Any, options: Any, ctx: Any) -> Variant:
    try:
        services = current()
        _check_greentic_ctx(services, ctx)
        status, headers, body = services.http_send(
            field(request, "method"), field(request, "url"),
            [(str(k), str(v)) for k, v in field(request, "headers")],
            None if field(request, "body") is None else bytes(field(request, "body")),
            field(options, "timeout-ms") if options is not None else None,
            bool(options is not None and field(options, "follow-redirects")))
    except HostDenied as exc:
        return Variant("err", _host_error(HTTP_ERROR_CODES.get(exc.code, exc.code), str(exc)))
    except GreenticError as exc:
        return Variant("err", _host_error("unavailable", str(exc)))
    return Variant("ok", record(status=status, headers=headers, body=body))


def _greentic_http_v1_0(instance: LinkerInstance, current: Current) -> None:
    instance.add_func("send", lambda _store, request, ctx: _http_send(current, request, None,
                                                                      ctx))


def _greentic_http_v1_1(instance: LinkerInstance, current: Current) -> None:
    instance.add_func("send", lambda _store, request, options, ctx: _http_send(
        current, request, options, ctx))


TELEMETRY_FIELDS = 32
"""Fields of one guest telemetry line kept (each value cut to 500 characters)."""


def _greentic_telemetry(instance: LinkerInstance, current: Current) -> None:
    """`greentic:telemetry/logger-api@1.0.0`: one structlog line per call, tagged by the host
    with the calling tenant (the guest's span and ctx are reported, never trusted)."""
    def log(_store: Any, span: Any, fields: Any, _ctx: Any) -> Any:
        values = {str(k): str(v)[:500] for k, v in list(fields)[:TELEMETRY_FIELDS]}
        level = values.pop("level", "info").lower()
        message = values.pop("message", None) or values.pop("msg", None) or "guest telemetry"
        for name in ("flow-id", "node-id", "session-id", "provider"):
            value = field(span, name)
            if value:
                values.setdefault(f"span_{name.replace('-', '_')}", str(value))
        current().log(level if level in LOG_LEVELS else "info", message, values)
        return "ok"

    instance.add_func("log", log)


def _own_state(instance: LinkerInstance, current: Current) -> None:
    def get(_store: Any, key: str) -> str | None:
        value = current().state_get(key)
        return None if value is None else value.decode("utf-8", "replace")

    instance.add_func("get", get)
    instance.add_func("set", lambda _store, key, value: current().state_set(key, value.encode()))
    instance.add_func("delete", lambda _store, key: current().state_delete(key))


def _own_secrets(instance: LinkerInstance, current: Current) -> None:
    def get(_store: Any, name: str) -> str | None:
        value = current().secret(name)
        return None if value is None else value.decode("utf-8", "replace")

    instance.add_func("get", get)


def _own_log(instance: LinkerInstance, current: Current) -> None:
    def log(_store: Any, level: Any, message: str) -> None:
        name = level if isinstance(level, str) else LOG_LEVELS[int(level)]
        current().log(name, message)

    instance.add_func("log", log)


def _own_http(instance: LinkerInstance, current: Current) -> None:
    def get(_store: Any, url: str) -> Variant:
        try:
            status, body = current().http_get(url)
        except GreenticError as exc:
            return Variant("err", str(exc))
        return Variant("ok", record(status=status, body=body))

    instance.add_func("get", get)


def _control(instance: LinkerInstance, _current: Current) -> None:
    instance.add_func("should-cancel", lambda _store: False)
    instance.add_func("yield-now", lambda _store: None)


DEFINERS: dict[str, Callable[[LinkerInstance, Current], None]] = {
    "greentic:state/state-store@1.0.0": _greentic_state,
    "greentic:secrets/secret-store@1.0.0": _greentic_secrets,
    "greentic-py:host/state@0.1.0": _own_state,
    "greentic-py:host/secrets@0.1.0": _own_secrets,
    "greentic-py:host/log@0.1.0": _own_log,
    "greentic-py:host/http@0.1.0": _own_http,
    "greentic:component/control@0.6.0": _control,
    "greentic:component/control@0.5.0": _control,
    "greentic:secrets-store/secrets-store@1.0.0": _greentic_secrets_store,
    "greentic:http/http-client@1.0.0": _greentic_http_v1_0,
    "greentic:http/http-client@1.1.0": _greentic_http_v1_1,
    "greentic:telemetry/logger-api@1.0.0": _greentic_telemetry,
}


def define_host_imports(linker: Linker, names: set[str], current: Current) -> None:
    """Add the host interfaces `names` (keys of DEFINERS) to `linker`."""
    with linker.root() as root:
        for name in sorted(names):
            with root.add_instance(name) as instance:
                DEFINERS[name](instance, current)

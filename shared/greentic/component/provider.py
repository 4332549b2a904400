"""Messaging providers as components: world `provider` (`greentic-py:messaging-provider@0.1.0`,
`wit/provider/package.wit`).

A provider only decides: `provider_webhook` turns a webhook into messages (and the webhook's
answer), `provider_encode` turns a reply into the HTTP requests to send, `provider_classify`
judges the provider's answer to one of them. The caller makes every request. Each call runs
like any component call (off the event loop, fuel, epoch deadline, memory cap, a fresh
instance), its result may not exceed `max_output_bytes` (checked while it is converted), and
what comes back is checked before anyone acts on it: a JSON field that is not JSON, a request
to a non-http(s) URL or with a header that could split a request, a status that is no status
are refused with ComponentError code `bad-output`. Secrets come through Greentic's
`secrets-store`: only names in the manifest's `capabilities.secrets`, resolved for the call's
channel.

The structs below mirror the WIT types (field names with `_` for `-`); the variants are
tagged structs: `IngressOutcome = Done | Fetch`, `EgressPlan = Send | Fetch`,
`Delivery = Delivered | Then | Retry | Failed`.
"""

import re
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

import msgspec
from wasmtime.component import Record, Variant

from greentic.component.host import CallServices, ComponentHost, Live, LoadedComponent
from greentic.errors import ComponentError, ConfigError
from greentic.interfaces.host_imports import HostDenied
from greentic.interfaces.values import OutputTooLarge, output_budget
from greentic.types.tenant import TenantCtx

T = TypeVar("T")
Headers = list[tuple[str, str]]


class ChannelCtx(msgspec.Struct, frozen=True):
    """The channel instance a call is for (from the route and the bundle, never the guest)."""

    env: str
    tenant: str
    team: str
    channel: str
    provider_type: str
    config: str = "{}"
    """JSON text of the channel's non-secret config (an object)."""

    def tenant_ctx(self) -> TenantCtx:
        return TenantCtx(self.env, self.tenant, self.team)


class HttpRequest(msgspec.Struct, frozen=True):
    """A request for the host to make."""

    method: str
    url: str
    headers: Headers = []
    body: str | None = None


class HttpResponse(msgspec.Struct, frozen=True):
    """An HTTP answer (of a webhook, or of a provider's API)."""

    status: int
    headers: Headers = []
    body: str | None = None

    def header(self, name: str) -> str | None:
        """The first header `name` (case-insensitive)."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def body_bytes(self) -> bytes:
        return (self.body or "").encode()


class FetchRequest(msgspec.Struct, frozen=True):
    """A request the provider needs answered before it decides; call again with `Fetched`."""

    key: str
    request: HttpRequest
    cache_ttl_s: int = 0
    """The answer may be reused (per channel + key) for this long; 0 = never."""


class Fetched(msgspec.Struct, frozen=True):
    key: str
    response: HttpResponse


class HttpIn(msgspec.Struct, frozen=True):
    """The webhook request as received; `body` is its UTF-8 text (see `http_in`)."""

    method: str
    path: str
    query: str | None = None
    headers: Headers = []
    body: str = ""
    route_hint: str | None = None


class Button(msgspec.Struct, frozen=True):
    title: str
    value: str


class Attachment(msgspec.Struct, frozen=True):
    content_type: str
    url: str | None = None
    name: str | None = None
    content: str | None = None
    """Inline content as JSON text (e.g. an Adaptive Card)."""


class InboundMessage(msgspec.Struct, frozen=True):
    """One user action the provider reported. JSON fields (`value`, `reply_scope`, `raw`) are
    JSON text, checked to parse."""

    event_id: str
    conversation: str
    sender: str
    text: str = ""
    value: str | None = None
    thread: str | None = None
    attachments: list[Attachment] = []
    reply_scope: str | None = None
    metadata: Headers = []
    raw: str | None = None


class IngressResult(msgspec.Struct, frozen=True):
    messages: list[InboundMessage] = []
    response: HttpResponse | None = None
    """The webhook's answer; None = 200 `{"ok": true}`."""


class Done(msgspec.Struct, frozen=True, tag="done"):
    result: IngressResult


class Fetch(msgspec.Struct, frozen=True, tag="fetch"):
    """Make these requests, then call again with their answers (ingress or egress)."""

    requests: list[FetchRequest]


IngressOutcome = Done | Fetch

INGRESS_STATUS = {"unauthorized": 401, "forbidden": 403, "bad-request": 400, "unavailable": 503}


class IngressError(msgspec.Struct, frozen=True):
    """A refused webhook: answer it with `status`."""

    kind: Literal["unauthorized", "forbidden", "bad-request", "unavailable"]
    message: str

    @property
    def status(self) -> int:
        return INGRESS_STATUS[self.kind]


class OutboundMessage(msgspec.Struct, frozen=True):
    """A reply to send; `id` is stable across redeliveries."""

    id: str
    conversation: str
    reply_scope: str | None = None
    thread: str | None = None
    text: str = ""
    buttons: list[Button] = []
    attachments: list[Attachment] = []
    metadata: Headers = []


class Send(msgspec.Struct, frozen=True, tag="send"):
    """Send these in order; each answer goes to `provider_classify`."""

    requests: list[HttpRequest]


EgressPlan = Send | Fetch


class Delivered(msgspec.Struct, frozen=True, tag="delivered"):
    message_id: str | None = None


class Then(msgspec.Struct, frozen=True, tag="then"):
    """Taken; send these next."""

    requests: list[HttpRequest]


class Retry(msgspec.Struct, frozen=True, tag="retry"):
    after_ms: int | None
    """The provider's wait (Retry-After); None = the host's backoff."""
    reason: str


class Failed(msgspec.Struct, frozen=True, tag="failed"):
    reason: str


Delivery = Delivered | Then | Retry | Failed


class ProviderMetadata(msgspec.Struct, frozen=True):
    provider_id: str
    display_name: str
    version: str
    rate_limit_hint: str | None = None


class ProviderCapabilities(msgspec.Struct, frozen=True):
    supports_threads: bool
    supports_buttons: bool
    supports_webhook_validation: bool
    supports_formatting_options: bool


class ProviderLimits(msgspec.Struct, frozen=True):
    max_text_len: int
    callback_data_max_bytes: int
    max_buttons_per_row: int
    max_button_rows: int


class CapabilitiesResponse(msgspec.Struct, frozen=True):
    metadata: ProviderMetadata
    capabilities: ProviderCapabilities
    limits: ProviderLimits


def http_in(method: str, path: str, headers: Headers, body: bytes, query: str | None = None,
            route_hint: str | None = None) -> HttpIn | IngressError:
    """The HttpIn of a received webhook, or a bad-request IngressError when its body is not
    UTF-8 (the world carries bodies as text)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return IngressError("bad-request", "the body is not UTF-8 text")
    return HttpIn(method, path, query, [(str(k), str(v)) for k, v in headers], text, route_hint)


def http_response(status: int, headers: Headers, body: bytes | None) -> HttpResponse:
    """A provider API's answer as classify gets it (bytes that are not UTF-8 are replaced)."""
    text = None if body is None else body.decode("utf-8", "replace")
    return HttpResponse(status, [(str(k), str(v)) for k, v in headers], text)


# to the guest

def _wit(value: Any) -> Any:
    """A struct as the WIT record wasmtime reads (fields by their WIT names), recursively."""
    if isinstance(value, msgspec.Struct):
        record = Record()
        for name in value.__struct_fields__:
            setattr(record, name.replace("_", "-"), _wit(getattr(value, name)))
        return record
    if isinstance(value, list):
        return [_wit(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_wit(item) for item in value)
    return value


# from the guest: every value checked before it is trusted

class BadOutput(Exception):
    pass


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[^\x00\r\n]*")
_URL = re.compile(r"https?://[^\s/?#@]+(?:[/?#][^\s]*)?", re.IGNORECASE)
_JSON = msgspec.json.Decoder()


def _get(value: Any, name: str) -> Any:
    try:
        return getattr(value, name)
    except AttributeError:
        raise BadOutput(f"no field {name}") from None


def _case(value: Any, untagged: Callable[[Any], str]) -> tuple[str, Any]:
    """(tag, payload) of a variant wasmtime lifted tagged (a Variant) or as its bare payload
    (when its cases have distinct Python types); `untagged` names the case of a bare one."""
    if isinstance(value, Variant):
        return value.tag, value.payload
    return untagged(value), value


def _result(value: Any, is_err: Callable[[Any], bool]) -> tuple[bool, Any]:
    """(ok, payload) of a WIT result, lifted tagged or bare (no case below it is named ok or
    err, so a Variant with those tags is the result itself)."""
    if isinstance(value, Variant) and value.tag in ("ok", "err"):
        return value.tag == "ok", value.payload
    return not is_err(value), value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadOutput(f"{what} is not a string")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _json(value: Any, what: str) -> str | None:
    if value is None:
        return None
    try:
        _JSON.decode(_text(value, what))
    except msgspec.DecodeError as exc:
        raise BadOutput(f"{what} is not JSON: {exc}") from None
    return value


def _pairs(value: Any, what: str, *, header: bool) -> Headers:
    pairs = []
    for pair in value:
        name, text = _text(pair[0], what), _text(pair[1], what)
        if header and (not _TOKEN.fullmatch(name) or not _HEADER_VALUE.fullmatch(text)):
            raise BadOutput(f"{what}: {name!r} is not a valid header")
        pairs.append((name, text))
    return pairs


def _request(value: Any) -> HttpRequest:
    method, url = _text(_get(value, "method"), "method"), _text(_get(value, "url"), "url")
    if not _TOKEN.fullmatch(method):
        raise BadOutput(f"request method {method[:40]!r} is not an HTTP method")
    if not _URL.fullmatch(url):
        raise BadOutput(f"request URL {url[:80]!r} is not an absolute http(s) URL")
    return HttpRequest(method, url, _pairs(_get(value, "headers"), "request headers", header=True),
                       _optional_text(_get(value, "body"), "request body"))


def _response(value: Any) -> HttpResponse:
    status = _get(value, "status")
    if not 100 <= status <= 599:
        raise BadOutput(f"response status {status} is not an HTTP status")
    return HttpResponse(status, _pairs(_get(value, "headers"), "response headers", header=True),
                        _optional_text(_get(value, "body"), "response body"))


def _fetch(value: Any) -> Fetch:
    return Fetch([FetchRequest(_text(_get(item, "key"), "fetch key"),
                               _request(_get(item, "request")), _get(item, "cache-ttl-s"))
                  for item in value])


def _attachment(value: Any) -> Attachment:
    return Attachment(_text(_get(value, "content-type"), "attachment content-type"),
                      _optional_text(_get(value, "url"), "attachment url"),
                      _optional_text(_get(value, "name"), "attachment name"),
                      _json(_get(value, "content"), "attachment content"))


def _message(value: Any) -> InboundMessage:
    event_id = _text(_get(value, "event-id"), "event-id")
    conversation = _text(_get(value, "conversation"), "conversation")
    if not event_id or not conversation:
        raise BadOutput("an inbound message needs an event-id and a conversation")
    return InboundMessage(
        event_id, conversation, _text(_get(value, "sender"), "sender"),
        _text(_get(value, "text"), "text"), _json(_get(value, "value"), "value"),
        _optional_text(_get(value, "thread"), "thread"),
        [_attachment(a) for a in _get(value, "attachments")],
        _json(_get(value, "reply-scope"), "reply-scope"),
        _pairs(_get(value, "metadata"), "metadata", header=False),
        _json(_get(value, "raw"), "raw"))


INGRESS_ERRORS = tuple(INGRESS_STATUS)


def _ingress(value: Any) -> IngressOutcome | IngressError:
    ok, payload = _result(value, lambda v: isinstance(v, Variant) and v.tag in INGRESS_ERRORS)
    if not ok:
        kind, message = _case(payload, lambda _v: "")
        if kind not in INGRESS_ERRORS:
            raise BadOutput(f"unknown ingress-error {kind!r}")
        return IngressError(kind, _text(message, "ingress-error"))
    tag, payload = _case(payload, lambda v: "fetch" if isinstance(v, list) else "done")
    if tag == "fetch":
        return _fetch(payload)
    response = _get(payload, "response")
    return Done(IngressResult([_message(m) for m in _get(payload, "messages")],
                              None if response is None else _response(response)))


def _plan(value: Any) -> EgressPlan:
    ok, payload = _result(value, lambda v: isinstance(v, str))
    if not ok:
        raise ComponentError("refused", _text(payload, "encode error"))
    tag, payload = _case(payload, lambda _v: "")
    if tag == "fetch":
        return _fetch(payload)
    if tag != "send":
        raise BadOutput(f"unknown egress-plan {tag!r}")
    return Send([_request(r) for r in payload])


def _delivery(value: Any) -> Delivery:
    tag, payload = _case(value, lambda _v: "")
    if tag == "delivered":
        return Delivered(_optional_text(payload, "message id"))
    if tag == "then":
        return Then([_request(r) for r in payload])
    if tag == "retry":
        return Retry(_get(payload, "after-ms"), _text(_get(payload, "reason"), "reason"))
    if tag == "failed":
        return Failed(_text(payload, "reason"))
    raise BadOutput(f"unknown delivery {tag!r}")


def _capabilities(value: Any) -> CapabilitiesResponse:
    def fields(record: Any, cls: type[T]) -> T:
        return cls(**{name: _get(record, name.replace("_", "-"))
                      for name in cls.__struct_fields__})  # type: ignore[attr-defined]
    return CapabilitiesResponse(fields(_get(value, "metadata"), ProviderMetadata),
                                fields(_get(value, "capabilities"), ProviderCapabilities),
                                fields(_get(value, "limits"), ProviderLimits))


DESCRIBE = ChannelCtx("dev", "describe", "describe", "describe", "")
"""The channel a describe call runs as (it reads no secrets)."""


class ChannelSecrets(Protocol):
    def get(self, channel: ChannelCtx, name: str) -> bytes | None:
        """Secret `name` of `channel`, or None."""
        ...


class TenantSecrets:
    """Channel secrets from the host's SecretsProvider: the channel's tenant's secret `name`."""

    def __init__(self, host: ComponentHost) -> None:
        self.host = host

    def get(self, channel: ChannelCtx, name: str) -> bytes | None:
        return self.host.secrets.get(channel.tenant_ctx(), name)


class ProviderServices(CallServices):
    """A provider call's host imports: secrets of its channel, by the manifest's names."""

    def __init__(self, host: ComponentHost, loaded: LoadedComponent, channel: ChannelCtx,
                 secrets: ChannelSecrets) -> None:
        super().__init__(host, loaded, channel.tenant_ctx(), channel.channel)
        self.channel = channel
        self.secrets = secrets

    def secret(self, name: str) -> bytes | None:
        if name not in self.loaded.manifest.capabilities.secrets:
            raise HostDenied("permission-denied",
                             f"secret {name!r} is not declared in the component's manifest")
        try:
            return self.secrets.get(self.channel, name)
        except ConfigError as exc:
            raise HostDenied("permission-denied", str(exc)) from None


class ProviderHost:
    """Calls provider components through a ComponentHost (its pool, limits and engine)."""

    def __init__(self, host: ComponentHost, secrets: ChannelSecrets | None = None) -> None:
        self.host = host
        self.secrets = secrets or TenantSecrets(host)
        """Resolves the secrets a provider reads; default: its channel's tenant's secrets."""

    async def _call(self, loaded: LoadedComponent, channel: ChannelCtx, function: str,
                    arguments: tuple[Any, ...], read: Callable[[Any], T]) -> T:
        body, services = self._body(loaded, channel, function, arguments, read)
        return await self.host.run(loaded, channel.tenant_ctx(), channel.channel, body, services)

    def _body(self, loaded: LoadedComponent, channel: ChannelCtx, function: str,
              arguments: tuple[Any, ...], read: Callable[[Any], T]
              ) -> tuple[Callable[[Live], T], ProviderServices]:
        """The call of `function` on an instance, its result checked, and its services."""
        if loaded.world != "provider":
            raise ComponentError("bad-input", f"component {loaded.id!r} is not a provider "
                                 f"(world {loaded.world})")
        limit = loaded.manifest.capabilities.limits.max_output_bytes

        def body(live: Live) -> T:
            try:
                with output_budget(limit):
                    result = live.funcs[function](live.store, *arguments)
                return read(result)
            except OutputTooLarge:
                raise ComponentError("output-too-large", f"{function}: output over the limit "
                                     f"of {limit} bytes (limits.max_output_bytes)") from None
            except (BadOutput, AttributeError, TypeError, IndexError) as exc:
                raise ComponentError("bad-output", f"{function}: {exc}") from None

        return body, ProviderServices(self.host, loaded, channel, self.secrets)

    async def provider_webhook(self, loaded: LoadedComponent, channel: ChannelCtx,
                               request: HttpIn, fetched: list[Fetched]
                               ) -> IngressOutcome | IngressError:
        """`ingress.handle-webhook`: Done (messages to publish, the webhook's answer), Fetch
        (requests to make, then call again with their answers) or IngressError (refuse it)."""
        return await self._call(loaded, channel, "handle-webhook",
                                (_wit(channel), _wit(request), _wit(fetched)), _ingress)

    async def provider_encode(self, loaded: LoadedComponent, channel: ChannelCtx,
                              message: OutboundMessage, fetched: list[Fetched]) -> EgressPlan:
        """`egress.encode`: Send (requests, in order) or Fetch; the guest's err raises
        ComponentError `refused` with its reason (dead-letter the message)."""
        return await self._call(loaded, channel, "encode",
                                (_wit(channel), _wit(message), _wit(fetched)), _plan)

    async def provider_classify(self, loaded: LoadedComponent, channel: ChannelCtx,
                                message: OutboundMessage, request: HttpRequest,
                                response: HttpResponse) -> Delivery:
        """`egress.classify`: the verdict on the provider's answer to one request."""
        return await self._call(loaded, channel, "classify",
                                (_wit(channel), _wit(message), _wit(request), _wit(response)),
                                _delivery)

    async def provider_describe(self, loaded: LoadedComponent) -> CapabilitiesResponse:
        """`capabilities.describe`."""
        return await self._call(loaded, DESCRIBE, "describe", (), _capabilities)

    def describe_sync(self, loaded: LoadedComponent) -> CapabilitiesResponse:
        """`provider_describe` in this thread (tools, not services). Blocking."""
        body, services = self._body(loaded, DESCRIBE, "describe", (), _capabilities)
        return self.host.call_sync(loaded, DESCRIBE.tenant_ctx(), DESCRIBE.channel, body,
                                   services)

"""Channels whose provider is a WebAssembly component of a pack (`provider: <pack>/<component>`).

The component only decides — is this webhook genuine and what does it say; which HTTP requests
send this reply; what does the provider's answer mean — and the host does the rest exactly as
for the built-in channels: ingress publishes each message durably (its id derived from the
provider's event id, so a redelivered webhook is published once) before it answers the
webhook; egress sends the rendered requests on its one HTTP session, paced and recorded as
sent, retries on the component's `retry` verdict or a transport error, and dead-letters on
`failed`. Requests go only to the hosts the component's manifest lists (`http_hosts`).

A component that traps, runs past its deadline or fuel, or answers garbage or too much is
stopped by its limits: the webhook is answered 502 naming the component and the code, a reply
is retried (then dead-lettered by the hop's delivery limit), every failure is counted, and the
other channels keep serving.
"""

import json
from collections import Counter
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp import web

from greentic.component.host import LoadedComponent
from greentic.component.provider import Button as ProviderButton
from greentic.component.provider import (
    ChannelCtx,
    Delivered,
    Done,
    Failed,
    Fetch,
    Fetched,
    FetchRequest,
    HttpRequest,
    HttpResponse,
    InboundMessage,
    IngressError,
    OutboundMessage,
    ProviderHost,
    Retry,
    Then,
    http_in,
    http_response,
)
from greentic.config.bundle import Bundle
from greentic.errors import ComponentError, ConfigError, DeadLetter, RetryLater
from greentic.hosting.components import ComponentRegistry
from greentic.providers.channel import ChannelInstance
from greentic.providers.webhooks import InboundEvent
from greentic.types.envelope import Envelope

log = structlog.get_logger(__name__)
KIND = "component"
MAX_FETCH_ROUNDS = 3
MAX_REQUESTS_PER_REPLY = 16
HTTP_TIMEOUT_S = 15.0
# component failures that the same input would repeat: dead-letter the reply at once
DETERMINISTIC = frozenset({"refused", "bad-output", "output-too-large", "bad-input"})
REFUSALS: dict[str, type[web.HTTPException]] = {
    "unauthorized": web.HTTPUnauthorized, "forbidden": web.HTTPForbidden,
    "bad-request": web.HTTPBadRequest, "unavailable": web.HTTPServiceUnavailable}


class ChannelConfigSecrets:
    """A provider's secrets are its channel's, as for the built-in channels: `config[name]` or
    the environment variable `config[name + "_env"]` names."""

    def __init__(self, channels: dict[tuple[str, str, str], ChannelInstance]) -> None:
        self.channels = channels

    def get(self, channel: ChannelCtx, name: str) -> bytes | None:
        instance = self.channels.get((channel.tenant, channel.team, channel.channel))
        if instance is None:
            return None
        try:
            return instance.secret(name).encode()
        except ConfigError:
            return None


def _public_config(channel: ChannelInstance, loaded: LoadedComponent) -> str:
    """The channel's config without the secrets the component reads through the host."""
    secret = set(loaded.manifest.capabilities.secrets)
    return json.dumps({k: v for k, v in channel.config.items()
                       if k not in secret and k.removesuffix("_env") not in secret},
                      sort_keys=True)


def component_channels(bundle: Bundle, env: str) -> dict[tuple[str, str, str], ChannelInstance]:
    """The bundle's channels whose provider is a pack's component, by (tenant, team, channel)."""
    return {(ctx.tenant, ctx.team, channel_id): ChannelInstance(ctx, channel_id,
                                                                channel.provider,
                                                                dict(channel.config))
            for ctx, channel_id, channel in bundle.channels(env)
            if channel.provider_component()}


class ComponentProviders:
    """The provider components of the bundle's channels, and calls to them."""

    def __init__(self, registry: ComponentRegistry, channels: dict[tuple[str, str, str],
                                                                   ChannelInstance]) -> None:
        self.registry = registry
        self.calls = ProviderHost(registry.host, ChannelConfigSecrets(channels))
        self.failures: Counter[str] = Counter()
        """Component failures by code (trap, timeout, bad-output, …)."""

    def component(self, channel: ChannelInstance) -> LoadedComponent:
        """The channel's provider component; RetryLater while it is not (yet) loaded."""
        pack, _, component = channel.provider.partition("/")
        loaded = self.registry.get(channel.ctx, pack, component)
        if loaded is None:
            reason = self.registry.refusal(channel.ctx, pack, component)
            state = f"refused: {reason}" if reason else "still loading" if \
                self.registry.is_pending(channel.ctx, pack, component) else "not loaded"
            raise RetryLater(f"provider component {channel.provider!r} is {state}")
        if loaded.world != "provider":
            raise DeadLetter(f"component {channel.provider!r} is a {loaded.world} component, "
                             "not a messaging provider")
        return loaded

    def ctx(self, channel: ChannelInstance, loaded: LoadedComponent) -> ChannelCtx:
        return ChannelCtx(env=channel.ctx.env, tenant=channel.ctx.tenant, team=channel.ctx.team,
                          channel=channel.channel, provider_type=channel.provider,
                          config=_public_config(channel, loaded))

    def failed(self, channel: ChannelInstance, exc: ComponentError) -> None:
        self.failures[exc.code] += 1
        log.warning("provider component failed", provider=channel.provider, code=exc.code,
                    tenant=channel.ctx.tenant, channel=channel.channel, error=exc.message)


def _allowed(loaded: LoadedComponent, request: HttpRequest) -> None:
    host = urlsplit(request.url).hostname or ""
    if host not in loaded.manifest.capabilities.http_hosts:
        raise DeadLetter(f"provider component {loaded.id!r} asked for {host or request.url!r}, "
                         "which its manifest does not list (capabilities.http_hosts)")


async def _exchange(http: aiohttp.ClientSession, request: HttpRequest) -> HttpResponse:
    """Make one request; a transport error or timeout is RetryLater."""
    try:
        async with http.request(request.method, request.url, headers=request.headers,
                                data=request.body.encode() if request.body is not None else None,
                                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as answer:
            body = await answer.read()
            return http_response(answer.status, list(answer.headers.items()), body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RetryLater(f"{request.url.split('?')[0]} unreachable: {exc!r}") from None


async def _fetch(http: aiohttp.ClientSession, loaded: LoadedComponent,
                 requests: list[FetchRequest]) -> list[Fetched]:
    found = []
    for wanted in requests:
        _allowed(loaded, wanted.request)
        found.append(Fetched(key=wanted.key, response=await _exchange(http, wanted.request)))
    return found


class ComponentWebhook:
    """Ingress: a webhook for a component channel, verified and normalised by the component."""

    kind = KIND

    def __init__(self, providers: ComponentProviders, http: aiohttp.ClientSession) -> None:
        self.providers = providers
        self.http = http

    async def receive(self, request: web.Request, body: bytes, channel: ChannelInstance
                      ) -> tuple[web.StreamResponse | None, list[InboundEvent]]:
        try:
            loaded = self.providers.component(channel)
        except (RetryLater, DeadLetter) as exc:
            raise web.HTTPServiceUnavailable(text=str(exc)) from None
        ctx = self.providers.ctx(channel, loaded)
        incoming = http_in(request.method, request.path, list(request.headers.items()), body,
                           query=request.query_string or None)
        if isinstance(incoming, IngressError):
            raise REFUSALS[incoming.kind](text=incoming.message)
        fetched: list[Fetched] = []
        for _ in range(MAX_FETCH_ROUNDS + 1):
            try:
                outcome = await self.providers.calls.provider_webhook(loaded, ctx, incoming,
                                                                      fetched)
            except ComponentError as exc:
                self.providers.failed(channel, exc)
                raise web.HTTPBadGateway(text=f"provider component {channel.provider!r} "
                                              f"failed ({exc.code}): {exc.message}") from None
            if isinstance(outcome, IngressError):
                raise REFUSALS[outcome.kind](text=outcome.message)
            if isinstance(outcome, Fetch):
                try:
                    fetched += await _fetch(self.http, loaded, outcome.requests)
                except (RetryLater, DeadLetter) as exc:
                    raise web.HTTPServiceUnavailable(text=str(exc)) from None
                continue
            assert isinstance(outcome, Done)
            return _webhook_answer(outcome.result.response), [
                _event(message) for message in outcome.result.messages]
        raise web.HTTPBadGateway(text=f"provider component {channel.provider!r} asked for more "
                                      f"than {MAX_FETCH_ROUNDS} rounds of requests")


def _json_or_none(text: str | None) -> object:
    return json.loads(text) if text else None


def _event(message: InboundMessage) -> InboundEvent:
    return InboundEvent(event_id=message.event_id, conversation=message.conversation,
                        sender=message.sender, text=message.text,
                        value=_json_or_none(message.value), thread=message.thread,
                        raw=_json_or_none(message.raw))


def _webhook_answer(response: HttpResponse | None) -> web.Response | None:
    if response is None:
        return None
    headers = {k: v for k, v in response.headers if k.lower() != "content-length"}
    return web.Response(status=response.status, headers=headers, body=response.body_bytes())


class ComponentSender:
    """Egress: a reply rendered by the component into requests, each answer classified by it."""

    def __init__(self, providers: ComponentProviders, http: aiohttp.ClientSession) -> None:
        self.providers = providers
        self.http = http

    async def send(self, envelope: Envelope, channel: ChannelInstance) -> None:
        loaded = self.providers.component(channel)
        ctx = self.providers.ctx(channel, loaded)
        message = OutboundMessage(
            id=envelope.id, conversation=envelope.reply_target or envelope.conversation,
            thread=envelope.thread, text=envelope.text or "",
            buttons=[ProviderButton(title=b.title, value=b.value or b.title)
                     for b in envelope.buttons])
        try:
            await self._deliver(loaded, ctx, message)
        except ComponentError as exc:
            self.providers.failed(channel, exc)
            reason = f"provider component {channel.provider!r} failed ({exc.code}): {exc.message}"
            raise (DeadLetter(reason) if exc.code in DETERMINISTIC else RetryLater(reason)) \
                from None

    async def _deliver(self, loaded: LoadedComponent, ctx: ChannelCtx,
                       message: OutboundMessage) -> None:
        fetched: list[Fetched] = []
        for _ in range(MAX_FETCH_ROUNDS + 1):
            plan = await self.providers.calls.provider_encode(loaded, ctx, message, fetched)
            if isinstance(plan, Fetch):
                fetched += await _fetch(self.http, loaded, plan.requests)
                continue
            pending, sent = list(plan.requests), 0
            while pending:
                request = pending.pop(0)
                sent += 1
                if sent > MAX_REQUESTS_PER_REPLY:
                    raise DeadLetter(f"provider component {loaded.id!r} rendered more than "
                                     f"{MAX_REQUESTS_PER_REPLY} requests for one reply")
                _allowed(loaded, request)
                answer = await _exchange(self.http, request)
                verdict = await self.providers.calls.provider_classify(loaded, ctx, message,
                                                                       request, answer)
                if isinstance(verdict, Then):
                    pending = list(verdict.requests) + pending
                elif isinstance(verdict, Retry):
                    raise RetryLater(verdict.reason, None if verdict.after_ms is None
                                     else verdict.after_ms / 1000)
                elif isinstance(verdict, Failed):
                    raise DeadLetter(verdict.reason)
                else:
                    assert isinstance(verdict, Delivered)
            return
        raise DeadLetter(f"provider component {loaded.id!r} asked for more than "
                         f"{MAX_FETCH_ROUNDS} rounds of requests")

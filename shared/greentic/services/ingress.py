"""ingress: the public HTTP server. Verifies, normalises and publishes; answers only after
the publish is acknowledged by JetStream."""

import asyncio
import secrets
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from nats.aio.client import Client
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind

from greentic.admin.api import AdminApi
from greentic.admin.tokens import parse_admin_tokens
from greentic.config.bundle import Bundle
from greentic.config.settings import Settings
from greentic.errors import ConfigError
from greentic.hosting.components import follow_provider_components
from greentic.hosting.limits import limited_app, limited_runner
from greentic.hosting.web import json_errors
from greentic.providers import slack, teams, telegram, whatsapp
from greentic.providers.components import ComponentProviders, ComponentWebhook, component_channels
from greentic.providers.webchat.directline import DirectLine
from greentic.providers.webhooks import Webhooks
from greentic.telemetry.tracing import span

log = structlog.get_logger(__name__)


CORS_PATHS = ("/v3/directline/", "/webchat/api/")


def cors_middleware(origins: str) -> Any:
    """Lets pages on the allowed origins embed Web Chat (Direct Line calls and preflights)."""
    allowed = {o.strip() for o in origins.split(",") if o.strip()}

    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(CORS_PATHS) or \
                not ("*" in allowed or origin in allowed):
            return await handler(request)
        headers = {"Access-Control-Allow-Origin": "*" if "*" in allowed else origin,
                   "Vary": "Origin"}
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={
                **headers, "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", "Authorization, Content-Type"),
                "Access-Control-Max-Age": "600"})
        response = await handler(request)
        response.headers.update(headers)
        return response

    return cors


@web.middleware
async def _traced(request: web.Request, handler: Any) -> web.StreamResponse:
    """A SERVER span per request that can carry a message in (continuing the caller's
    `traceparent`), so the publish and every later hop join the caller's trace."""
    if request.method == "GET":
        return await handler(request)
    # an unmatched path is the client's text (scanners, typos): never a span name
    route = request.match_info.route.resource.canonical if request.match_info.route.resource \
        else "unmatched"
    with span(f"{request.method} {route}", kind=SpanKind.SERVER, headers=request.headers,
              attributes={"http.request.method": request.method, "http.route": route}) as current:
        response = await handler(request)
        current.set_attribute("http.response.status_code", response.status)
        return response


class IngressService:
    name = "ingress"

    def __init__(self, settings: Settings, bundle: Bundle) -> None:
        self.settings = settings
        self.bundle = bundle
        self._runner: web.AppRunner | None = None
        self._directline: DirectLine | None = None
        self._stopped = asyncio.Event()
        self.admin_tokens = parse_admin_tokens(settings.admin_tokens)
        if self.admin_tokens and settings.admin_port == settings.http_port != 0:
            raise ConfigError(f"GREENTIC_ADMIN_PORT={settings.admin_port}: the admin API needs "
                              "its own port, not the public GREENTIC_HTTP_PORT")
        self.admin: AdminApi | None = None
        self.providers: ComponentProviders | None = None
        self._follow: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        key = self.settings.webchat_token_key
        if not key:
            key = secrets.token_hex(32)
            log.warning("GREENTIC_WEBCHAT_TOKEN_KEY is not set; using a random key, so tokens "
                        "are valid on this replica only")
        public_url = self.settings.public_url or f"http://127.0.0.1:{self.settings.http_port}"
        self._directline = DirectLine(js, self.bundle, self.settings.env, key.encode(),
                                      public_url)
        app = limited_app(max_body_bytes=self.settings.max_body_bytes,
                          body_timeout_s=self.settings.http_body_timeout_s,
                          middlewares=[cors_middleware(self.settings.cors_origins), _traced,
                                       json_errors])
        self._webhooks = Webhooks(js, self.bundle, self.settings.env, {
            telegram.KIND: telegram.TelegramWebhook(), slack.KIND: slack.SlackWebhook(),
            whatsapp.KIND: whatsapp.WhatsAppWebhook(), teams.KIND: teams.TeamsWebhook()},
            component=await self._component_webhook(js))
        app.add_routes(self._directline.routes())
        app.add_routes(self._webhooks.routes())
        self._runner = limited_runner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        log.info("http listening", url=public_url, webchat=f"{public_url}/webchat/")
        if self.admin_tokens:
            self.admin = AdminApi(self.settings, self.admin_tokens, nc, js)
            await self.admin.start()
        else:
            log.info("admin API not started: GREENTIC_ADMIN_TOKENS is empty")

    async def _component_webhook(self, js: JetStreamContext) -> ComponentWebhook | None:
        """Provider components of the bundle's component channels (none: nothing loaded)."""
        channels = component_channels(self.bundle, self.settings.env)
        if not channels:
            return None
        registry, self._follow = await follow_provider_components(self.settings, js)
        self._http = aiohttp.ClientSession()
        self.providers = ComponentProviders(registry, channels)
        return ComponentWebhook(self.providers, self._http)

    async def run(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.stop()
        if self._runner is not None:
            await self._runner.cleanup()  # stops accepting, finishes in-flight requests
        if self._follow is not None:
            self._follow.cancel()
        if self._http is not None:
            await self._http.close()
        self._stopped.set()

    def stats(self) -> dict[str, Any]:
        if self._directline is None:
            return {}
        return {"webchat_published": self._directline.published,
                "webhook_published": self._webhooks.published,
                "webhook_rejected": self._webhooks.rejected,
                **({"provider_components": len(self.providers.registry),
                    "provider_component_failures": dict(self.providers.failures)}
                   if self.providers else {})}

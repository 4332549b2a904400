"""The admin HTTP API, served on its own port (`GREENTIC_ADMIN_HOST:GREENTIC_ADMIN_PORT`).

Every request needs `Authorization: Bearer <token>` (401 otherwise); a tenant-scoped token
reads and changes only its own tenant's sessions (403 for another tenant's).

    GET    /admin/sessions[?tenant=&team=&channel=]   live sessions (key, turns, updated, node)
    GET    /admin/sessions/{env.tenant.team.channel.conversation}   one session, with revision
    DELETE /admin/sessions/{key}                       forget it (the next message starts afresh)
    POST   /admin/packs/deploy                         JSON body → NATS request to the
                                                       pack-loader; its JSON answer comes back
"""

from typing import Any

import msgspec
import nats.errors
import structlog
from aiohttp import web
from nats.aio.client import Client
from nats.js import JetStreamContext

from greentic.admin.tokens import AdminScope, AdminTokens
from greentic.config.settings import Settings
from greentic.errors import StoreUnavailable, SubjectError
from greentic.hosting.limits import limited_app, limited_runner
from greentic.hosting.web import json_error, json_errors
from greentic.pack.deploy import decode_deploy_reply, decode_deploy_request
from greentic.runner.stores import Stores, open_stores
from greentic.session.model import SessionKey, parse_session_key, session_document
from greentic.session.store import RecordSessionStore

log = structlog.get_logger(__name__)

PACK_DEPLOY_SUBJECT = "greentic.admin.pack.deploy"
SCOPE_HEADER = "Greentic-Admin-Scope"
"""Sent with the deploy request: `*` (an all-tenants token deployed it)."""
_SCOPE = web.RequestKey("admin_scope", AdminScope)


def _unauthorized(message: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text=message, headers={"WWW-Authenticate": 'Bearer realm="admin"'})


class AdminApi:
    """Sessions and pack deploys for operators; the tokens decide which tenants they reach."""

    def __init__(self, settings: Settings, tokens: AdminTokens, nc: Client,
                 js: JetStreamContext) -> None:
        self.settings = settings
        self.tokens = tokens
        self.nc = nc
        self.js = js
        self._stores: Stores | None = None
        self._runner: web.AppRunner | None = None

    # --- server -------------------------------------------------------------------
    def app(self) -> web.Application:
        app = limited_app(max_body_bytes=self.settings.max_body_bytes,
                          body_timeout_s=self.settings.http_body_timeout_s,
                          middlewares=[json_errors, self._authenticate])
        app.add_routes([
            web.get("/admin/sessions", self.list_sessions),
            web.get("/admin/sessions/{key}", self.show_session),
            web.delete("/admin/sessions/{key}", self.delete_session),
            web.post("/admin/packs/deploy", self.deploy_pack),
        ])
        return app

    async def start(self) -> None:
        self._runner = limited_runner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.admin_host, self.settings.admin_port)
        await site.start()
        log.info("admin API listening", host=self.settings.admin_host,
                 port=self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._stores is not None:
            await self._stores.close()

    # --- authentication -------------------------------------------------------------
    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise _unauthorized("missing 'Authorization: Bearer <admin token>'")
        scope = self.tokens.scope_of(presented.strip())
        if scope is None:
            log.warning("admin request with an unknown token", path=request.path)
            raise _unauthorized("unknown admin token")
        request[_SCOPE] = scope
        return await handler(request)

    @staticmethod
    def _require_tenant(request: web.Request, tenant: str) -> None:
        scope = request[_SCOPE]
        if not scope.allows(tenant):
            raise web.HTTPForbidden(text=f"this token is scoped to tenant {scope.tenant!r}")

    def _key(self, request: web.Request) -> SessionKey:
        try:
            key = parse_session_key(request.match_info["key"])
        except SubjectError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        self._require_tenant(request, key.ctx.tenant)
        if key.ctx.env != self.settings.env:
            raise web.HTTPNotFound(text=f"this platform serves environment "
                                        f"{self.settings.env!r}, not {key.ctx.env!r}")
        return key

    # --- sessions -------------------------------------------------------------------
    async def _sessions(self) -> RecordSessionStore:
        if self.settings.session_backend == "memory":
            raise web.HTTPNotImplemented(text="GREENTIC_SESSION_BACKEND=memory: sessions live "
                                              "inside the executor process")
        if self._stores is None:
            try:
                self._stores = await open_stores(self.settings, self.js, ensure=False)
            except StoreUnavailable as exc:
                raise web.HTTPServiceUnavailable(text=str(exc)) from None
        return self._stores.sessions

    async def list_sessions(self, request: web.Request) -> web.Response:
        scope: AdminScope = request[_SCOPE]
        wanted = {name: request.query.get(name) or None for name in ("tenant", "team", "channel")}
        if wanted["tenant"] is None:
            wanted["tenant"] = scope.tenant
        self._require_tenant(request, wanted["tenant"] or "")
        sessions = await self._sessions()
        try:
            keys = await sessions.list_keys(self.settings.env, **wanted)
        except SubjectError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        listed = []
        for key in keys:
            found = await sessions.get(key)
            if found is not None:  # expired or deleted meanwhile
                listed.append({"key": key.path(), "turns": found[0].turns,
                               "updated_ms": found[0].updated_ms,
                               "paused_at": (found[0].snapshot or {}).get("node")})
        return web.json_response({"sessions": listed})

    async def show_session(self, request: web.Request) -> web.Response:
        key = self._key(request)
        found = await (await self._sessions()).get(key)
        if found is None:
            raise web.HTTPNotFound(text=f"no session {key.path()}")
        return web.Response(body=msgspec.json.encode(session_document(key, *found)),
                            content_type="application/json")

    async def delete_session(self, request: web.Request) -> web.Response:
        key = self._key(request)
        sessions = await self._sessions()
        if await sessions.get(key) is None:
            raise web.HTTPNotFound(text=f"no session {key.path()}")
        await sessions.delete(key)
        log.info("session deleted by admin", key=key.path())
        return web.json_response({"deleted": key.path()})

    # --- packs ----------------------------------------------------------------------
    async def deploy_pack(self, request: web.Request) -> web.Response:
        if request[_SCOPE].tenant is not None:
            raise web.HTTPForbidden(text="deploying packs needs an all-tenants admin token "
                                         "(packs are shared by the bundle's tenants)")
        body = await request.read()
        try:
            decode_deploy_request(body)  # pack-loader's own schema: {pack, locator?, digest?}
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(text=f"not a deploy request: {exc}") from None
        timeout = self.settings.admin_deploy_timeout_s
        try:
            reply = await self.nc.request(PACK_DEPLOY_SUBJECT, body, timeout=timeout,
                                          headers={SCOPE_HEADER: "*"})
        except nats.errors.NoRespondersError:
            return json_error(503, "ServiceUnavailable", f"no pack-loader listens on "
                              f"{PACK_DEPLOY_SUBJECT}; is the pack-loader running?",
                              {"Retry-After": "5"})
        except nats.errors.TimeoutError:
            return json_error(504, "GatewayTimeout", f"the pack-loader did not answer on "
                              f"{PACK_DEPLOY_SUBJECT} within {timeout:g} s "
                              "(GREENTIC_ADMIN_DEPLOY_TIMEOUT_S); the deploy may still finish")
        try:
            answer = decode_deploy_reply(reply.data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return json_error(502, "BadGateway", "the pack-loader's answer is not a deploy "
                              "reply")
        return web.Response(body=reply.data, content_type="application/json",
                            status=200 if answer.ok else 422)

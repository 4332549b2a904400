"""The Direct Line 3.0 subset served by ingress, plus the anonymous token endpoint of /webchat/.

Authentication follows Direct Line: `Authorization: Bearer <channel secret | token>`.
A secret opens any conversation of its channel; a token only the conversation it names.
"""

import asyncio
import contextlib
import os
import secrets
from importlib import resources
from typing import Any

import msgspec
import structlog
from aiohttp import WSMsgType, web
from nats.js import JetStreamContext

from greentic.bus.subjects import validate_token
from greentic.config.bundle import Bundle
from greentic.errors import SubjectError
from greentic.hosting.web import decode_json
from greentic.providers.inbound import publish_inbound
from greentic.providers.webchat.activity import (
    PROVIDER,
    Activity,
    activity_id,
    encode_activity,
    envelope_from_activity,
    user_echo,
)
from greentic.providers.webchat.tokens import (
    TOKEN_TTL_S,
    TokenClaims,
    TokenError,
    issue_token,
    new_claims,
    verify_token,
)
from greentic.providers.webchat.transcript import Transcript
from greentic.types.tenant import TenantCtx

log = structlog.get_logger(__name__)
PREFIX = "/v3/directline"


class AnonymousTokenRequest(msgspec.Struct):
    tenant: str
    team: str
    channel: str


def _error(status: int, code: str, message: str) -> web.Response:
    """Direct Line's error body shape."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


MAX_WATERMARK = 2**63 - 1


def _watermark(request: web.Request) -> int | None:
    """The `watermark` query parameter: a stream sequence (0 … 2⁶³-1), or None when absent;
    400 for anything else (it is passed on to JetStream)."""
    raw = request.query.get("watermark")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_WATERMARK:
        raise web.HTTPBadRequest(text=f"watermark must be a number from 0 to {MAX_WATERMARK}")
    return int(raw)


class DirectLine:
    """Direct Line endpoints for every webchat channel of the bundle."""

    def __init__(self, js: JetStreamContext, bundle: Bundle, env: str, token_key: bytes,
                 public_url: str) -> None:
        self.js = js
        self.env = env
        self.token_key = token_key
        self.public_url = public_url.rstrip("/")
        self.secrets: dict[str, TokenClaims] = {}
        self.anonymous: set[tuple[str, str, str]] = set()
        self.published = 0
        for ctx, channel_id, channel in bundle.channels(env):
            if channel.provider != PROVIDER:
                continue
            secret = channel.config.get("secret") or os.environ.get(
                str(channel.config.get("secret_env", "")), "")
            if secret:
                self.secrets[secret] = TokenClaims(ctx.tenant, ctx.team, channel_id, exp=0)
            if channel.config.get("anonymous"):
                self.anonymous.add((ctx.tenant, ctx.team, channel_id))

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{PREFIX}/tokens/generate", self.generate_token),
            web.post(f"{PREFIX}/tokens/refresh", self.refresh_token),
            web.post(f"{PREFIX}/conversations", self.start_conversation),
            web.get(f"{PREFIX}/conversations/{{cid}}", self.reconnect),
            web.post(f"{PREFIX}/conversations/{{cid}}/activities", self.post_activity),
            web.get(f"{PREFIX}/conversations/{{cid}}/activities", self.get_activities),
            web.get(f"{PREFIX}/conversations/{{cid}}/stream", self.stream),
            web.post("/webchat/api/token", self.anonymous_token),
            web.get("/webchat/api/channels", self.list_anonymous_channels),
            web.get("/webchat/", self.page),
            web.get("/webchat", self.page),
        ]

    # --- authentication -------------------------------------------------------------
    def _claims(self, request: web.Request, bearer: str | None = None) -> TokenClaims:
        if bearer is None:
            scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not bearer:
                raise web.HTTPUnauthorized(text="missing 'Authorization: Bearer <secret|token>'")
        by_secret = self.secrets.get(bearer)
        if by_secret is not None:
            return by_secret
        try:
            return verify_token(self.token_key, bearer)
        except TokenError as exc:
            raise web.HTTPForbidden(text=str(exc)) from None

    def _conversation(self, request: web.Request, claims: TokenClaims) -> str:
        cid = request.match_info["cid"]
        try:
            validate_token("conversation", cid)
        except SubjectError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if claims.conversation is not None and claims.conversation != cid:
            raise web.HTTPForbidden(text="token is not valid for this conversation")
        return cid

    def _ctx(self, claims: TokenClaims) -> TenantCtx:
        return TenantCtx(self.env, claims.tenant, claims.team)

    def _conversation_body(self, claims: TokenClaims, cid: str) -> dict[str, Any]:
        token = issue_token(self.token_key, new_claims(claims.tenant, claims.team, claims.channel,
                                                       cid))
        stream_url = (self.public_url.replace("http", "ws", 1)
                      + f"{PREFIX}/conversations/{cid}/stream?t={token}")
        return {"conversationId": cid, "token": token, "expires_in": TOKEN_TTL_S,
                "streamUrl": stream_url}

    # --- endpoints ------------------------------------------------------------------
    async def generate_token(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        cid = claims.conversation or secrets.token_urlsafe(16)
        body = self._conversation_body(claims, cid)
        return web.json_response({k: body[k] for k in ("conversationId", "token", "expires_in")})

    async def refresh_token(self, request: web.Request) -> web.Response:
        return await self.generate_token(request)

    async def anonymous_token(self, request: web.Request) -> web.Response:
        try:
            wanted = decode_json(await request.read(), AnonymousTokenRequest)
        except msgspec.DecodeError as exc:
            return _error(400, "BadArgument", f"expected {{tenant, team, channel}}: {exc}")
        if (wanted.tenant, wanted.team, wanted.channel) not in self.anonymous:
            return _error(403, "Forbidden", "this channel does not allow anonymous WebChat")
        cid = secrets.token_urlsafe(16)
        claims = new_claims(wanted.tenant, wanted.team, wanted.channel, cid)
        return web.json_response({"conversationId": cid, "expires_in": TOKEN_TTL_S,
                                  "token": issue_token(self.token_key, claims)})

    async def list_anonymous_channels(self, _request: web.Request) -> web.Response:
        return web.json_response([{"tenant": t, "team": m, "channel": c}
                                  for t, m, c in sorted(self.anonymous)])

    async def start_conversation(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        cid = claims.conversation or secrets.token_urlsafe(16)
        return web.json_response(self._conversation_body(claims, cid), status=201)

    async def reconnect(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        return web.json_response(self._conversation_body(claims,
                                                         self._conversation(request, claims)))

    async def post_activity(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        cid = self._conversation(request, claims)
        try:
            activity = decode_json(await request.read(), Activity)
        except msgspec.DecodeError as exc:
            return _error(400, "BadArgument", f"not a valid activity: {exc}")
        if activity.type != "message":
            return web.json_response({"id": activity_id(cid, activity)})  # typing etc.: ignored
        if not (activity.text or activity.value):
            return _error(400, "BadArgument", "a message activity needs 'text' or 'value'")
        ctx = self._ctx(claims)
        envelope = envelope_from_activity(activity, message_id=activity_id(cid, activity),
                                          ctx=ctx, channel=claims.channel, conversation=cid)
        # both durable before we answer, sent in one write (one round trip, not two); a failed
        # one fails the POST (the echo may then show a message the flow did not get until the
        # client retries), and the retry is stored once (same ids)
        await asyncio.gather(
            publish_inbound(self.js, envelope),
            Transcript(self.js, ctx, claims.channel, cid).append(user_echo(activity, envelope)))
        self.published += 1
        return web.json_response({"id": envelope.id})

    async def get_activities(self, request: web.Request) -> web.Response:
        claims = self._claims(request)
        cid = self._conversation(request, claims)
        watermark = _watermark(request) or 0
        transcript = Transcript(self.js, self._ctx(claims), claims.channel, cid)
        activities, watermark = await transcript.read(watermark)
        return web.Response(body=msgspec.json.encode({"activities": activities,
                                                      "watermark": str(watermark)}),
                            content_type="application/json")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        claims = self._claims(request, request.query.get("t"))
        cid = self._conversation(request, claims)
        watermark = _watermark(request)
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        transcript = Transcript(self.js, self._ctx(claims), claims.channel, cid)

        async def pump() -> None:
            async for activity, seq in transcript.follow(watermark):
                await ws.send_str('{"activities":[' + encode_activity(activity).decode()
                                  + f'],"watermark":"{seq}"}}')

        task = asyncio.create_task(pump())
        try:
            async for msg in ws:  # clients send nothing we need; wait for them to close
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return ws

    async def page(self, _request: web.Request) -> web.Response:
        html = resources.files("greentic.providers.webchat").joinpath("static/index.html")
        return web.Response(text=html.read_text(encoding="utf-8"), content_type="text/html")


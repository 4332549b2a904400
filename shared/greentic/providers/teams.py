"""Microsoft Teams (Bot Framework): activities in, replies through the activity's serviceUrl.

Ingress validates the bearer JWT: RS256 signed by a key of the configured JWKS (`jwks` inline
or `jwks_url`, default Bot Framework's), issuer `https://api.botframework.com`, audience = the
bot's app id, not expired, and its `serviceUrl` claim equal to the activity's. Egress gets a
bot token by OAuth client credentials (cached until it expires) and POSTs the reply to
`{serviceUrl}/v3/conversations/{id}/activities/{replyToId}`; buttons become a hero card.
Replies only go to service URLs with an allowed prefix (no SSRF through a forged serviceUrl).
"""

import time
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from greentic.errors import DeadLetter, RetryLater
from greentic.providers.channel import ChannelInstance
from greentic.providers.delivery import HttpSender, post_json
from greentic.providers.webhooks import InboundEvent, decode_json_body, json_object
from greentic.types.envelope import Envelope

KIND = "teams"
ISSUER = "https://api.botframework.com"
JWKS_URL = "https://login.botframework.com/v1/.well-known/keys"
TOKEN_URL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
SERVICE_URL_PREFIXES = ("https://smba.trafficmanager.net/",
                        "https://smba.infra.gov.teams.microsoft.us/")
JWKS_TTL_S = 24 * 3600


class TeamsWebhook:
    kind = KIND

    def __init__(self) -> None:
        self._jwks: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    async def _keys(self, channel: ChannelInstance) -> jwt.PyJWKSet:
        inline = channel.config.get("jwks")
        if isinstance(inline, dict):
            return jwt.PyJWKSet.from_dict(inline)
        url = channel.setting("jwks_url", JWKS_URL)
        cached = self._jwks.get(url)
        if cached is None or cached[0] < time.monotonic():
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                keys = jwt.PyJWKSet.from_dict(await response.json(content_type=None))
            cached = self._jwks[url] = (time.monotonic() + JWKS_TTL_S, keys)
        return cached[1]

    async def receive(self, request: web.Request, body: bytes, channel: ChannelInstance
                      ) -> tuple[web.StreamResponse | None, list[InboundEvent]]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise web.HTTPUnauthorized(text="missing bearer token")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((k for k in (await self._keys(channel)).keys if k.key_id == kid), None)
            if key is None:
                raise web.HTTPForbidden(text="token signed by an unknown key")
            claims = jwt.decode(token, key.key, algorithms=["RS256"],
                                audience=channel.secret("app_id"),
                                issuer=channel.setting("issuer", ISSUER), leeway=300,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise web.HTTPForbidden(text=f"invalid token: {exc}") from None
        service_url, events = parse_body(body)
        if claims.get("serviceUrl") and claims["serviceUrl"] != service_url:
            raise web.HTTPForbidden(text="serviceUrl does not match the token")
        return None, events


def parse_body(body: bytes) -> tuple[str, list[InboundEvent]]:
    """An activity body → its `serviceUrl` and events; HTTPBadRequest if it is not an
    activity."""
    activity = decode_json_body(body)
    if not isinstance(activity, dict) or not isinstance(activity.get("conversation"), dict):
        raise web.HTTPBadRequest(text="not a Bot Framework activity")
    service_url = str(activity.get("serviceUrl") or "")
    if activity.get("type") != "message":
        return service_url, []  # conversationUpdate, typing…: acknowledged, not input
    value = activity.get("value")
    text = str(activity.get("text") or "")
    if not text and isinstance(value, dict):  # Adaptive Card submit / hero card messageBack
        text = str(value.get("text") or value.get("choice") or value.get("action") or "")
    conversation_id = str(activity["conversation"].get("id") or "")
    return service_url, [InboundEvent(
        event_id=str(activity.get("id") or ""), conversation=f"{service_url}|{conversation_id}",
        sender=str(json_object(activity.get("from")).get("id") or ""), text=text, value=value,
        thread=str(activity.get("id") or ""), raw=activity)]


def hero_card(envelope: Envelope) -> dict[str, Any]:
    return {"contentType": "application/vnd.microsoft.card.hero", "content": {
        "text": envelope.text,
        "buttons": [{"type": "imBack", "title": b.title, "value": b.value or b.title}
                    for b in envelope.buttons]}}


class TeamsSender(HttpSender):
    def __init__(self, http: aiohttp.ClientSession) -> None:
        super().__init__(http)
        self._tokens: dict[str, tuple[float, str]] = {}
        """Bot Framework access tokens by app id, with their expiry."""

    async def _token(self, channel: ChannelInstance) -> str:
        app_id = channel.secret("app_id")
        cached = self._tokens.get(app_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        form = {"grant_type": "client_credentials", "client_id": app_id,
                "client_secret": channel.secret("app_password"),
                "scope": "https://api.botframework.com/.default"}
        async with self.http.post(channel.setting("token_url", TOKEN_URL), data=form) as response:
            if response.status >= 500 or response.status == 429:
                raise RetryLater(f"teams token endpoint answered {response.status}")
            answer = await response.json(content_type=None)
            if response.status >= 400 or "access_token" not in answer:
                raise DeadLetter(f"teams token refused: HTTP {response.status} "
                                 f"{answer.get('error', '')}")
        expires = time.monotonic() + float(answer.get("expires_in", 3600)) - 300
        self._tokens[app_id] = (expires, answer["access_token"])
        return answer["access_token"]

    async def send(self, envelope: Envelope, channel: ChannelInstance) -> None:
        service_url, _, conversation_id = (envelope.reply_target or "").rpartition("|")
        prefixes = tuple(channel.config.get("service_url_prefixes") or SERVICE_URL_PREFIXES)
        if not service_url.startswith(prefixes):
            raise DeadLetter(f"serviceUrl {service_url!r} is not an allowed Bot Framework host")
        activity: dict[str, Any] = {"type": "message", "text": envelope.text,
                                    "conversation": {"id": conversation_id},
                                    "replyToId": envelope.thread}
        if envelope.buttons:
            activity["attachments"] = [hero_card(envelope)]
        url = (f"{service_url.rstrip('/')}/v3/conversations/{conversation_id}/activities/"
               f"{envelope.thread or ''}").rstrip("/")
        await post_json(self.http, url, activity, provider=KIND,
                        headers={"Authorization": f"Bearer {await self._token(channel)}"})

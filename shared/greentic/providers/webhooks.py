"""Provider webhooks on ingress: `POST /webhooks/{tenant}/{team}/{channel}`.

Each request is verified by its provider before anything is published; its events become
envelopes whose ids derive from the provider's event id, so a provider's duplicate delivery
is dropped by JetStream's deduplication (no second reply). The provider gets its 2xx only
after the publish is acknowledged; otherwise it retries.
"""

import hashlib
import hmac
import time
from typing import Any, Protocol

import msgspec
import structlog
from aiohttp import web
from nats.js import JetStreamContext

from greentic.bus.subjects import conversation_token
from greentic.config.bundle import Bundle
from greentic.hosting.web import decode_json
from greentic.providers.channel import ChannelInstance
from greentic.providers.inbound import publish_inbound
from greentic.types.envelope import Envelope

log = structlog.get_logger(__name__)


class InboundEvent(msgspec.Struct, kw_only=True):
    """One user action a provider reported, normalised."""

    event_id: str
    conversation: str
    sender: str
    text: str = ""
    value: Any = None
    thread: str | None = None
    raw: Any = None


class WebhookProvider(Protocol):
    """Verifies and parses one provider's webhook requests."""

    kind: str

    async def receive(self, request: web.Request, body: bytes, channel: ChannelInstance
                      ) -> tuple[web.StreamResponse | None, list[InboundEvent]]:
        """Raise HTTPUnauthorized/HTTPForbidden/HTTPBadRequest on bad requests; return an
        immediate response (a challenge) and/or the events to publish."""
        ...


def decode_json_body(body: bytes) -> Any:
    """A webhook body as JSON, or 400 naming the parse error."""
    try:
        return decode_json(body)
    except msgspec.DecodeError as exc:
        raise web.HTTPBadRequest(text=f"not JSON: {exc}") from None


def json_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one: in a forged or future payload, any
    field a provider documents as an object may be anything."""
    return value if isinstance(value, dict) else {}


def json_list(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else an empty one (see `json_object`)."""
    return value if isinstance(value, list) else []


def optional_text(value: Any) -> str | None:
    """A payload field as text, or None when absent or empty."""
    return None if value is None or value == "" else str(value)


def secret_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of a presented secret or signature."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def event_message_id(channel: ChannelInstance, event_id: str) -> str:
    """Deterministic message id of a provider event (the same delivery → the same id)."""
    key = f"{channel.ctx.tenant}/{channel.ctx.team}/{channel.channel}/{event_id}"
    return "e" + hashlib.sha256(key.encode()).hexdigest()[:25]


class Webhooks:
    """The webhook routes for every non-WebChat channel of the bundle."""

    def __init__(self, js: JetStreamContext, bundle: Bundle, env: str,
                 providers: dict[str, WebhookProvider],
                 component: WebhookProvider | None = None) -> None:
        """`providers` by kind; `component` serves the channels whose provider is a pack's
        component (`<pack>/<component>`)."""
        self.js = js
        self.providers = providers
        self.component = component
        self.channels: dict[tuple[str, str, str], ChannelInstance] = {
            (ctx.tenant, ctx.team, channel_id): ChannelInstance(ctx, channel_id, channel.provider,
                                                                dict(channel.config))
            for ctx, channel_id, channel in bundle.channels(env)
            if channel.provider in providers or (component and channel.provider_component())}
        self.published = 0
        self.rejected = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/{tenant}/{team}/{channel}", self.handle),
                web.get("/webhooks/{tenant}/{team}/{channel}", self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["tenant"], request.match_info["team"],
               request.match_info["channel"])
        channel = self.channels.get(key)
        if channel is None:
            raise web.HTTPNotFound(text="no such channel")
        body = await request.read()
        try:
            provider = self.providers.get(channel.provider) or self.component
            assert provider is not None  # only such channels are in self.channels
            response, events = await provider.receive(request, body, channel)
        except (web.HTTPUnauthorized, web.HTTPForbidden):
            self.rejected += 1
            log.warning("webhook rejected", provider=channel.provider, tenant=channel.ctx.tenant,
                        channel=channel.channel)
            raise
        for event in events:
            await self.publish(channel, event)
        return response or web.json_response({"ok": True})

    async def publish(self, channel: ChannelInstance, event: InboundEvent) -> None:
        await publish_inbound(self.js, event_envelope(channel, event))
        self.published += 1


def event_envelope(channel: ChannelInstance, event: InboundEvent) -> Envelope:
    """The inbound envelope of one provider event on `channel`."""
    return Envelope(id=event_message_id(channel, event.event_id), ctx=channel.ctx,
                    channel=channel.channel, provider=channel.provider,
                    conversation=conversation_token(event.conversation), sender=event.sender,
                    text=event.text[:8000], value=event.value, thread=event.thread,
                    created_ms=int(time.time() * 1000), raw=event.raw,
                    reply_target=event.conversation)

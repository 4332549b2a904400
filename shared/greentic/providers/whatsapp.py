"""WhatsApp Cloud API: webhook verification and messages in, `/messages` out.

`GET` answers Meta's subscription check (`hub.mode=subscribe`, `hub.verify_token`,
`hub.challenge`); `POST` bodies are verified with `X-Hub-Signature-256` (HMAC-SHA256 with the
app secret). Text messages and interactive replies (buttons, lists) become events keyed by the
message id; status callbacks (sent/delivered/read) are ignored. Egress sends text, up to three
reply buttons, or a list for more choices.
"""

import hashlib
import hmac
from typing import Any

from aiohttp import web

from greentic.providers.channel import ChannelInstance
from greentic.providers.delivery import HttpSender, post_json
from greentic.providers.webhooks import (
    InboundEvent,
    decode_json_body,
    json_list,
    json_object,
    secret_matches,
)
from greentic.types.envelope import Envelope

KIND = "whatsapp"


def signature(app_secret: str, body: bytes) -> str:
    """What Meta sends in `X-Hub-Signature-256` for `body`: HMAC-SHA256 with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class WhatsAppWebhook:
    kind = KIND

    async def receive(self, request: web.Request, body: bytes, channel: ChannelInstance
                      ) -> tuple[web.StreamResponse | None, list[InboundEvent]]:
        if request.method == "GET":
            return self._verify_subscription(request, channel), []
        if not secret_matches(request.headers.get("X-Hub-Signature-256", ""),
                              signature(channel.secret("app_secret"), body)):
            raise web.HTTPUnauthorized(text="bad X-Hub-Signature-256")
        return None, parse_body(body)

    def _verify_subscription(self, request: web.Request, channel: ChannelInstance
                             ) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or not secret_matches(
                token, channel.secret("verify_token")):
            raise web.HTTPForbidden(text="verify token mismatch")
        return web.Response(text=query.get("hub.challenge", ""))


def parse_body(body: bytes) -> list[InboundEvent]:
    """A verified webhook body → its events; HTTPBadRequest if it has no entry list."""
    payload = decode_json_body(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise web.HTTPBadRequest(text="not a WhatsApp webhook (no entry list)")
    return _events(payload)


def _text_of(message: dict[str, Any]) -> tuple[str, Any]:
    if message.get("type") == "text":
        return str(json_object(message.get("text")).get("body") or ""), None
    interactive = json_object(message.get("interactive"))
    reply = interactive.get("button_reply") or interactive.get("list_reply")
    if isinstance(reply, dict):
        return str(reply.get("title") or reply.get("id") or ""), reply.get("id")
    if message.get("type") == "button":  # quick-reply button of a template message
        button = json_object(message.get("button"))
        return str(button.get("text") or ""), button.get("payload")
    return "", None


def _events(payload: dict[str, Any]) -> list[InboundEvent]:
    events = []
    for entry in payload["entry"]:
        for change in json_list(json_object(entry).get("changes")):
            value = json_object(json_object(change).get("value"))
            for message in json_list(value.get("messages")):
                if not isinstance(message, dict) or not message.get("from"):
                    continue
                text, chosen = _text_of(message)
                if not text and chosen is None:
                    continue  # images, locations… are not handled yet
                events.append(InboundEvent(event_id=str(message.get("id")),
                                           conversation=str(message["from"]),
                                           sender=str(message["from"]), text=text,
                                           value=chosen, raw=message))
    return events


def message_body(envelope: Envelope) -> dict[str, Any]:
    """The `/messages` body: text, reply buttons (≤ 3) or a list (≤ 10 rows)."""
    to = envelope.reply_target or envelope.conversation
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    text = envelope.text or " "
    buttons = envelope.buttons
    if not buttons:
        return {**base, "type": "text", "text": {"body": text[:4096]}}
    if len(buttons) <= 3:
        action = {"buttons": [{"type": "reply", "reply": {"id": (b.value or b.title)[:256],
                                                          "title": b.title[:20]}}
                              for b in buttons]}
        return {**base, "type": "interactive",
                "interactive": {"type": "button", "body": {"text": text[:1024]},
                                "action": action}}
    rows = [{"id": (b.value or b.title)[:200], "title": b.title[:24]} for b in buttons[:10]]
    return {**base, "type": "interactive", "interactive": {
        "type": "list", "body": {"text": text[:4096]},
        "action": {"button": "Choose", "sections": [{"title": "Options", "rows": rows}]}}}


API_BASE = "https://graph.facebook.com/v21.0"


class WhatsAppSender(HttpSender):

    async def send(self, envelope: Envelope, channel: ChannelInstance) -> None:
        base = channel.setting("api_base", API_BASE).rstrip("/")
        url = f"{base}/{channel.secret('phone_number_id')}/messages"
        await post_json(self.http, url, message_body(envelope), provider=KIND,
                        headers={"Authorization": f"Bearer {channel.secret('access_token')}"})

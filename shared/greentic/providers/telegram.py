"""Telegram Bot API: webhook updates in, `sendMessage` out.

Ingress checks `X-Telegram-Bot-Api-Secret-Token` (set with `setWebhook(secret_token=…)`);
messages and callback queries (inline keyboard clicks) become events keyed by `update_id`.
A callback query is answered in the webhook's own response (`answerCallbackQuery`, which
Telegram runs for us once the click is stored), so the user's client stops its spinner at once.
Egress sends `sendMessage` with buttons as an inline keyboard.
"""

from typing import Any

from aiohttp import web

from greentic.errors import DeadLetter
from greentic.providers.channel import ChannelInstance
from greentic.providers.delivery import HttpSender, post_json
from greentic.providers.webhooks import (
    InboundEvent,
    decode_json_body,
    json_object,
    secret_matches,
)
from greentic.types.envelope import Envelope

KIND = "telegram"


class TelegramWebhook:
    kind = KIND

    async def receive(self, request: web.Request, body: bytes, channel: ChannelInstance
                      ) -> tuple[web.StreamResponse | None, list[InboundEvent]]:
        if not secret_matches(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""),
                              channel.secret("secret_token")):
            raise web.HTTPUnauthorized(text="secret token missing or wrong")
        update = _update(body)
        event = _event(update)
        return _answer(update), [event] if event else []


def parse_body(body: bytes) -> list[InboundEvent]:
    """A webhook body → its events (none or one); HTTPBadRequest if it is not an update."""
    event = _event(_update(body))
    return [event] if event else []


def _update(body: bytes) -> dict[str, Any]:
    update = decode_json_body(body)
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise web.HTTPBadRequest(text="not a Telegram update (no update_id)")
    return update


def _answer(update: dict[str, Any]) -> web.Response | None:
    """The webhook answer that acknowledges a callback query (a Bot API call in the reply)."""
    query_id = json_object(update.get("callback_query")).get("id")
    if not isinstance(query_id, str) or not query_id:
        return None
    return web.json_response({"method": "answerCallbackQuery", "callback_query_id": query_id})


def _event(update: dict[str, Any]) -> InboundEvent | None:
    event_id = str(update["update_id"])
    message = update.get("message") or update.get("edited_message")
    if isinstance(message, dict) and isinstance(message.get("chat"), dict):
        return InboundEvent(event_id=event_id, conversation=str(message["chat"].get("id")),
                            sender=str(json_object(message.get("from")).get("id", "")),
                            text=str(message.get("text") or message.get("caption") or ""),
                            raw=update)
    query = json_object(update.get("callback_query"))
    chat = json_object(query.get("message")).get("chat")
    if isinstance(chat, dict):
        data = str(query.get("data") or "")
        return InboundEvent(event_id=event_id, conversation=str(chat.get("id")),
                            sender=str(json_object(query.get("from")).get("id", "")), text=data,
                            value=data, raw=update)
    return None  # other update kinds (joins, polls…) are not conversation input


API_BASE = "https://api.telegram.org"


class TelegramSender(HttpSender):

    async def send(self, envelope: Envelope, channel: ChannelInstance) -> None:
        payload: dict[str, Any] = {"chat_id": envelope.reply_target or envelope.conversation,
                                   "text": envelope.text or " "}
        if envelope.buttons:
            payload["reply_markup"] = {"inline_keyboard": [
                [{"text": b.title, "callback_data": (b.value or b.title)[:64]}]
                for b in envelope.buttons]}
        base = channel.setting("api_base", API_BASE).rstrip("/")
        answer = await post_json(self.http, f"{base}/bot{channel.secret('bot_token')}/sendMessage",
                                 payload, provider=KIND)
        if isinstance(answer, dict) and answer.get("ok") is False:
            raise DeadLetter(f"telegram refused the message: {answer.get('description')}")

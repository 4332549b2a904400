"""telegram: the Telegram Bot API as a provider component, answering as the built-in channel
(shared/greentic/providers/telegram.py) does, byte for byte.

Ingress checks `X-Telegram-Bot-Api-Secret-Token` against the channel's secret `secret_token`;
message, edited_message and callback_query updates are one inbound message each (event id =
update_id); a callback query is acknowledged in the webhook's own answer
(`answerCallbackQuery`). Egress is `sendMessage` with buttons as an inline keyboard; classify
reads the answer as the built-in's post_json does (providers/delivery.py).
"""

import hmac
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import capabilities
from wit_world.imports import secrets_store, types

API_BASE = "https://api.telegram.org"
KIND = "telegram"
MAX_JSON_DEPTH = 64
"""As the platform's decode_json (hosting/web.py): deeper bodies are refused."""


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def secret(name: str) -> str | None:
    try:
        value = secrets_store.get(name)
    except Err:
        return None
    return value.decode() if value else None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def strict_json(text: str) -> object:
    """json.loads as strict as the platform's msgspec decoder: no NaN/Infinity, no number out
    of range, no lone surrogate, at most MAX_JSON_DEPTH levels."""
    value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            item.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
    return value


def json_object(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def answer_callback(update: dict) -> types.HttpResponse | None:
    query_id = json_object(update.get("callback_query")).get("id")
    if not isinstance(query_id, str) or not query_id:
        return None
    # as aiohttp's web.json_response writes it
    body = json.dumps({"method": "answerCallbackQuery", "callback_query_id": query_id})
    return types.HttpResponse(status=200,
                              headers=[("Content-Type", "application/json; charset=utf-8")],
                              body=body)


def inbound(update: dict, raw: str) -> types.InboundMessage | None:
    event_id = str(update["update_id"])
    message = update.get("message") or update.get("edited_message")
    if isinstance(message, dict) and isinstance(message.get("chat"), dict):
        return types.InboundMessage(
            event_id=event_id, conversation=str(message["chat"].get("id")),
            sender=str(json_object(message.get("from")).get("id", "")),
            text=str(message.get("text") or message.get("caption") or ""), value=None,
            thread=None, attachments=[], reply_scope=None, metadata=[], raw=raw)
    query = json_object(update.get("callback_query"))
    chat = json_object(query.get("message")).get("chat")
    if isinstance(chat, dict):
        data = str(query.get("data") or "")
        return types.InboundMessage(
            event_id=event_id, conversation=str(chat.get("id")),
            sender=str(json_object(query.get("from")).get("id", "")), text=data,
            value=json.dumps(data), thread=None, attachments=[], reply_scope=None, metadata=[],
            raw=raw)
    return None  # other update kinds (joins, polls…) are not conversation input


class Capabilities(exports.Capabilities):
    def describe(self) -> capabilities.CapabilitiesResponse:
        return capabilities.CapabilitiesResponse(
            metadata=capabilities.ProviderMetadata(
                provider_id="telegram", display_name="Telegram", version="0.1.0",
                rate_limit_hint="30 messages/s per bot, 1/s per chat"),
            capabilities=capabilities.ProviderCapabilities(
                supports_threads=False, supports_buttons=True, supports_webhook_validation=True,
                supports_formatting_options=False),
            limits=capabilities.ProviderLimits(max_text_len=4096, callback_data_max_bytes=64,
                                               max_buttons_per_row=1, max_button_rows=100))


class Ingress(exports.Ingress):
    def handle_webhook(self, channel: types.ChannelCtx, request: types.HttpIn,
                       fetched: list[types.Fetched]) -> types.IngressOutcome:
        expected = secret("secret_token")
        if expected is None:
            raise Err(types.IngressError_Unavailable("secret_token is not configured"))
        given = header(request.headers, "x-telegram-bot-api-secret-token") or ""
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
            raise Err(types.IngressError_Unauthorized("secret token missing or wrong"))
        try:
            update = strict_json(request.body)
        except (ValueError, RecursionError) as exc:
            raise Err(types.IngressError_BadRequest(f"not JSON: {exc}")) from None
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise Err(types.IngressError_BadRequest("not a Telegram update (no update_id)"))
        message = inbound(update, request.body)
        return types.IngressOutcome_Done(types.IngressResult(
            messages=[message] if message else [], response=answer_callback(update)))


def _config(channel: types.ChannelCtx) -> dict:
    try:
        return json_object(json.loads(channel.config or "{}"))
    except ValueError:
        return {}


def _body(response: types.HttpResponse) -> object:
    """The answer's JSON as aiohttp's `response.json(content_type=None)` reads it, or None."""
    text = (response.body or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _retry_after_ms(response: types.HttpResponse, body: object) -> int | None:
    given = header(response.headers, "retry-after")
    if given and given.strip().isdigit():
        try:
            return round(float(given) * 1000)
        except ValueError:
            return None
    if isinstance(body, dict):  # Telegram: {"parameters": {"retry_after": 3}}
        seconds = json_object(body.get("parameters") or {}).get("retry_after")
        if isinstance(seconds, int | float):
            return round(float(seconds) * 1000)
    return None


class Egress(exports.Egress):
    def encode(self, channel: types.ChannelCtx, message: types.OutboundMessage,
               fetched: list[types.Fetched]) -> types.EgressPlan:
        token = secret("bot_token")
        if token is None:
            raise Err("bot_token is not configured")
        payload: dict = {"chat_id": message.conversation, "text": message.text or " "}
        if message.buttons:
            payload["reply_markup"] = {"inline_keyboard": [
                [{"text": b.title, "callback_data": (b.value or b.title)[:64]}]
                for b in message.buttons]}
        base = str(_config(channel).get("api_base") or API_BASE).rstrip("/")
        # as aiohttp's `json=` sends it: json.dumps with its defaults, UTF-8
        return types.EgressPlan_Send([types.HttpRequest(
            method="POST", url=f"{base}/bot{token}/sendMessage",
            headers=[("Content-Type", "application/json")], body=json.dumps(payload))])

    def classify(self, channel: types.ChannelCtx, message: types.OutboundMessage,
                 request: types.HttpRequest, response: types.HttpResponse) -> types.Delivery:
        status, body = response.status, _body(response)
        if status == 429:
            return types.Delivery_Retry(types.Retry(
                after_ms=_retry_after_ms(response, body), reason=f"{KIND} rate limited (429)"))
        if status >= 500:
            return types.Delivery_Retry(types.Retry(
                after_ms=_retry_after_ms(response, body), reason=f"{KIND} answered {status}"))
        if status >= 400:
            return types.Delivery_Failed(
                f"{KIND} refused the message: HTTP {status} {str(body)[:300]}")
        if isinstance(body, dict) and body.get("ok") is False:
            return types.Delivery_Failed(
                f"{KIND} refused the message: {body.get('description')}")
        message_id = json_object(json_object(body).get("result")).get("message_id")
        return types.Delivery_Delivered(None if message_id is None else str(message_id))

"""Slack: Events API and interactivity in, `chat.postMessage` out.

Ingress verifies `X-Slack-Signature` (v0, HMAC-SHA256 with the signing secret over
`v0:{timestamp}:{body}`, timestamp within 5 minutes), answers `url_verification`, and turns
user messages and button clicks into events keyed by Slack's event id, so Slack's retries
(`X-Slack-Retry-Num`) are deduplicated. Egress posts with the bot token, in the thread,
buttons as Block Kit actions.
"""

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import parse_qs

import msgspec
from aiohttp import web

from greentic.errors import DeadLetter, RetryLater
from greentic.hosting.web import decode_json
from greentic.providers.channel import ChannelInstance
from greentic.providers.delivery import HttpSender, post_json
from greentic.providers.webhooks import (
    InboundEvent,
    json_list,
    json_object,
    optional_text,
    secret_matches,
)
from greentic.types.envelope import Envelope

KIND = "slack"
API_BASE = "https://slack.com"
MAX_SKEW_S = 300


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackWebhook:
    kind = KIND

    async def receive(self, request: web.Request, body: bytes, channel: ChannelInstance
                      ) -> tuple[web.StreamResponse | None, list[InboundEvent]]:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        fresh = timestamp.isascii() and timestamp.isdigit() and \
            abs(time.time() - int(timestamp)) <= MAX_SKEW_S
        if not fresh:
            raise web.HTTPUnauthorized(text="missing or stale X-Slack-Request-Timestamp")
        expected = slack_signature(channel.secret("signing_secret"), timestamp, body)
        if not secret_matches(request.headers.get("X-Slack-Signature", ""), expected):
            raise web.HTTPUnauthorized(text="bad X-Slack-Signature")
        return parse_body(body, request.content_type)


def parse_body(body: bytes, content_type: str
               ) -> tuple[web.StreamResponse | None, list[InboundEvent]]:
    """A verified request body → the challenge answer and/or its events; HTTPBadRequest if it
    is not a Slack payload."""
    try:
        if content_type == "application/x-www-form-urlencoded":
            payload = decode_json(parse_qs(body.decode())["payload"][0])
            return None, _interaction(payload)
        payload = decode_json(body)
    except (msgspec.DecodeError, KeyError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"not a Slack payload: {exc}") from None
    if not isinstance(payload, dict):
        raise web.HTTPBadRequest(text="not a Slack payload")
    if payload.get("type") == "url_verification":
        return web.json_response({"challenge": payload.get("challenge", "")}), []
    if payload.get("type") == "event_callback":
        return None, _message(payload)
    return None, []


def _message(payload: dict[str, Any]) -> list[InboundEvent]:
    event = payload.get("event")
    if not isinstance(event, dict) or event.get("type") not in ("message", "app_mention"):
        return []
    if event.get("bot_id") or event.get("subtype") or not event.get("channel"):
        return []  # our own posts and edits/joins are not user input
    return [InboundEvent(event_id=str(payload.get("event_id") or event.get("ts")),
                         conversation=str(event["channel"]), sender=str(event.get("user", "")),
                         text=str(event.get("text") or ""),
                         thread=optional_text(event.get("thread_ts") or event.get("ts")),
                         raw=payload)]


def _interaction(payload: Any) -> list[InboundEvent]:
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return []
    actions = json_list(payload.get("actions"))
    channel = json_object(payload.get("channel")).get("id")
    if not actions or not channel:
        return []
    action = json_object(actions[0])
    value = str(action.get("value") or "")
    container = json_object(payload.get("container"))
    return [InboundEvent(event_id=str(payload.get("trigger_id") or action.get("action_ts")),
                         conversation=str(channel),
                         sender=str(json_object(payload.get("user")).get("id", "")), text=value,
                         value=value, thread=optional_text(container.get("thread_ts")
                                                           or container.get("message_ts")),
                         raw=payload)]


def blocks(envelope: Envelope) -> list[dict[str, Any]]:
    """Block Kit: the text as a section, buttons as an actions block."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": envelope.text or " "}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": b.title[:75]},
                 "value": (b.value or b.title)[:2000], "action_id": f"button-{index}"}
                for index, b in enumerate(envelope.buttons)]}]


class SlackSender(HttpSender):

    async def send(self, envelope: Envelope, channel: ChannelInstance) -> None:
        payload: dict[str, Any] = {"channel": envelope.reply_target or envelope.conversation,
                                   "text": envelope.text or " "}
        if envelope.thread:
            payload["thread_ts"] = envelope.thread
        if envelope.buttons:
            payload["blocks"] = blocks(envelope)
        base = channel.setting("api_base", API_BASE).rstrip("/")
        answer = await post_json(
            self.http, f"{base}/api/chat.postMessage", payload, provider=KIND,
            headers={"Authorization": f"Bearer {channel.secret('bot_token')}"})
        if isinstance(answer, dict) and answer.get("ok") is False:
            if answer.get("error") == "ratelimited":
                raise RetryLater("slack rate limited")
            raise DeadLetter(f"slack refused the message: {answer.get('error')}")

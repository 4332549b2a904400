"""signed-webhook: a generic signed-webhook channel (Mattermost-style outgoing webhook).

Ingress: `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the channel's secret
`signing_secret`, compared in constant time; the body `{"event_id", "conversation", "user",
"text", "value"?}` is one inbound message. Egress: `POST {config.reply_url}` with the JSON
`{"conversation", "text", "buttons": [{"title", "value"}], "in_reply_to": <message id>}`
(sorted keys, compact separators: the bytes are reproducible) signed the same way. Classify:
2xx delivered (the answer's `id`), 429/5xx retry (Retry-After seconds), other 4xx failed.
"""

import hashlib
import hmac
import json
import warnings  # noqa: F401  hmac imports it lazily; componentize-py bundles what is imported

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import capabilities
from wit_world.imports import secrets_store, types

SIGNATURE_HEADER = "x-signature"
REQUIRED = ("event_id", "conversation", "user", "text")


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signing_secret() -> bytes | None:
    try:
        return secrets_store.get("signing_secret") or None
    except Err:
        return None


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Capabilities(exports.Capabilities):
    def describe(self) -> capabilities.CapabilitiesResponse:
        return capabilities.CapabilitiesResponse(
            metadata=capabilities.ProviderMetadata(
                provider_id="signed-webhook", display_name="Signed webhook", version="0.1.0",
                rate_limit_hint=None),
            capabilities=capabilities.ProviderCapabilities(
                supports_threads=False, supports_buttons=True, supports_webhook_validation=True,
                supports_formatting_options=False),
            limits=capabilities.ProviderLimits(max_text_len=16000, callback_data_max_bytes=1024,
                                               max_buttons_per_row=1, max_button_rows=10))


class Ingress(exports.Ingress):
    def handle_webhook(self, channel: types.ChannelCtx, request: types.HttpIn,
                       fetched: list[types.Fetched]) -> types.IngressOutcome:
        secret = signing_secret()
        if secret is None:
            raise Err(types.IngressError_Unavailable("signing_secret is not configured"))
        body = request.body.encode()
        given = header(request.headers, SIGNATURE_HEADER) or ""
        if not hmac.compare_digest(given.encode(), signature(secret, body).encode()):
            raise Err(types.IngressError_Unauthorized("X-Signature missing or wrong"))
        try:
            event = json.loads(request.body)
        except ValueError as exc:
            raise Err(types.IngressError_BadRequest(f"not JSON: {exc}")) from None
        if not isinstance(event, dict):
            raise Err(types.IngressError_BadRequest("the body is not a JSON object"))
        missing = [name for name in REQUIRED if not isinstance(event.get(name), str)
                   or (name != "text" and not event[name])]
        if missing:
            raise Err(types.IngressError_BadRequest("missing or not text: " + ", ".join(missing)))
        value = canonical_json(event["value"]) if event.get("value") is not None else None
        message = types.InboundMessage(
            event_id=event["event_id"], conversation=event["conversation"],
            sender=event["user"], text=event["text"], value=value, thread=None, attachments=[],
            reply_scope=None, metadata=[], raw=request.body)
        return types.IngressOutcome_Done(types.IngressResult(messages=[message], response=None))


class Egress(exports.Egress):
    def encode(self, channel: types.ChannelCtx, message: types.OutboundMessage,
               fetched: list[types.Fetched]) -> types.EgressPlan:
        try:
            config = json.loads(channel.config or "{}")
        except ValueError:
            config = {}
        url = config.get("reply_url") if isinstance(config, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise Err("config.reply_url (an http(s) URL) is required")
        secret = signing_secret()
        if secret is None:
            raise Err("signing_secret is not configured")
        body = canonical_json({
            "conversation": message.conversation, "text": message.text,
            "buttons": [{"title": b.title, "value": b.value} for b in message.buttons],
            "in_reply_to": message.id})
        headers = [("Content-Type", "application/json"),
                   ("X-Signature", signature(secret, body.encode()))]
        return types.EgressPlan_Send([types.HttpRequest(method="POST", url=url, headers=headers,
                                                        body=body)])

    def classify(self, channel: types.ChannelCtx, message: types.OutboundMessage,
                 request: types.HttpRequest, response: types.HttpResponse) -> types.Delivery:
        status = response.status
        if 200 <= status < 300:
            try:
                answer = json.loads(response.body or "")
            except ValueError:
                answer = None
            given = answer.get("id") if isinstance(answer, dict) else None
            return types.Delivery_Delivered(None if given is None else str(given))
        if status == 429 or status >= 500:
            wait = (header(response.headers, "retry-after") or "").strip()
            after_ms = int(wait) * 1000 if wait.isdigit() else None
            return types.Delivery_Retry(types.Retry(after_ms=after_ms,
                                                    reason=f"HTTP {status}"))
        snippet = (response.body or "")[:200]
        return types.Delivery_Failed(f"HTTP {status}: {snippet}")

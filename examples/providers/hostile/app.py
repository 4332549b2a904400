"""hostile-provider: a provider that misbehaves as its channel config says (`{"mode": …}`), to
prove the host contains it; used by tests/unit/test_provider_components.py.

Modes: `trap` raises, `loop` spins forever, `huge` answers 8 MB of text, `many` answers
20,000 messages (`crowd` 1,400: just under the output limit), `bad-json` a value that is not
JSON, `bad-url` a request to a file: URL, `bad-header` a header that would split the request,
`secrets` reads a declared and an undeclared secret; anything else answers normally.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import capabilities
from wit_world.imports import secrets_store, types


def mode(channel: types.ChannelCtx) -> str:
    return str(json.loads(channel.config or "{}").get("mode", ""))


def misbehave(channel: types.ChannelCtx) -> str:
    """Do what the mode says when it is the same for every function; return the mode."""
    chosen = mode(channel)
    if chosen == "trap":
        raise RuntimeError("the provider gave up")
    if chosen == "loop":
        n = 0
        while True:
            n += 1
    return chosen


def read(name: str) -> str:
    try:
        value = secrets_store.get(name)
    except Err as err:
        return f"error:{err.value.name.lower()}"
    return "none" if value is None else value.decode()


def message(text: str, value: str | None = None) -> types.InboundMessage:
    return types.InboundMessage(event_id="e1", conversation="c1", sender="u1", text=text,
                                value=value, thread=None, attachments=[], reply_scope=None,
                                metadata=[], raw=None)


def request(url: str = "https://example.com/send",
            headers: list[tuple[str, str]] | None = None, body: str = "{}") -> types.HttpRequest:
    return types.HttpRequest(method="POST", url=url, headers=headers or [], body=body)


class Capabilities(exports.Capabilities):
    def describe(self) -> capabilities.CapabilitiesResponse:
        return capabilities.CapabilitiesResponse(
            metadata=capabilities.ProviderMetadata(provider_id="hostile", display_name="Hostile",
                                                   version="0.1.0", rate_limit_hint=None),
            capabilities=capabilities.ProviderCapabilities(
                supports_threads=False, supports_buttons=False,
                supports_webhook_validation=False, supports_formatting_options=False),
            limits=capabilities.ProviderLimits(max_text_len=1, callback_data_max_bytes=1,
                                               max_buttons_per_row=1, max_button_rows=1))


class Ingress(exports.Ingress):
    def handle_webhook(self, channel: types.ChannelCtx, request: types.HttpIn,
                       fetched: list[types.Fetched]) -> types.IngressOutcome:
        chosen = misbehave(channel)
        if chosen == "huge":
            messages = [message("x" * (8 << 20))]
        elif chosen == "many":
            messages = [message("")] * 20_000
        elif chosen == "crowd":  # as many as fit under the default output limit
            messages = [message("")] * 1_400
        elif chosen == "bad-json":
            messages = [message("hi", value="{not json")]
        elif chosen == "secrets":
            messages = [message(f"{read('declared')} {read('undeclared')}")]
        else:
            messages = [message(f"fine: {request.body}")]
        return types.IngressOutcome_Done(types.IngressResult(messages=messages, response=None))


class Egress(exports.Egress):
    def encode(self, channel: types.ChannelCtx, message: types.OutboundMessage,
               fetched: list[types.Fetched]) -> types.EgressPlan:
        chosen = misbehave(channel)
        if chosen == "bad-url":
            return types.EgressPlan_Send([request("file:///etc/passwd")])
        if chosen == "bad-header":
            return types.EgressPlan_Send([request(headers=[("X-Note", "a\r\nX-Evil: 1")])])
        if chosen == "huge":
            return types.EgressPlan_Send([request(body="x" * (8 << 20))])
        return types.EgressPlan_Send([request(body=json.dumps({"text": message.text}))])

    def classify(self, channel: types.ChannelCtx, message: types.OutboundMessage,
                 request: types.HttpRequest, response: types.HttpResponse) -> types.Delivery:
        misbehave(channel)
        return types.Delivery_Delivered(None)

"""Messaging providers as components (world `provider`), with guests built from source and real
wasmtime: the signed-webhook channel, Telegram as a component answering exactly as the built-in
channel does, and hostile providers contained (trap, loop, huge or invalid answers, forbidden
imports refused at load)."""

import asyncio
import datetime
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
import telegram
from aiohttp import web

from greentic.component import ComponentEngine, ComponentHost
from greentic.component.build import read_project
from greentic.component.provider import (
    Button,
    CapabilitiesResponse,
    ChannelCtx,
    Delivered,
    Done,
    Failed,
    HttpIn,
    HttpRequest,
    HttpResponse,
    IngressError,
    OutboundMessage,
    ProviderHost,
    Retry,
    Send,
    http_in,
)
from greentic.errors import ComponentError, ComponentLoadError, DeadLetter, RetryLater
from greentic.interfaces.wit import WIT_DIR, assemble_wit
from greentic.providers import telegram as builtin
from greentic.providers.channel import ChannelInstance
from greentic.secrets import EnvSecretsProvider
from greentic.state import MemoryStateStore
from greentic.types import TenantCtx
from greentic.types.envelope import Button as EnvelopeButton
from greentic.types.envelope import Envelope
from tests.guests import PROVIDER_EXAMPLES, PROVIDERS, build_provider

ACME = TenantCtx("dev", "acme", "support")
SIGNING_SECRET = "whsec-acme-0123456789"
TG_SECRET, TG_TOKEN = "tg-secret-token", "123456:ABC-test"


class ChannelSecrets:
    """Secrets per (tenant, channel, name), as a bundle's channel config would give them."""

    def __init__(self, values: dict[tuple[str, str, str], str]) -> None:
        self.values = values
        self.asked: list[tuple[str, str, str]] = []

    def get(self, channel: ChannelCtx, name: str) -> bytes | None:
        key = (channel.tenant, channel.channel, name)
        self.asked.append(key)
        value = self.values.get(key)
        return None if value is None else value.encode()


SECRETS = {("acme", "hooks", "signing_secret"): SIGNING_SECRET,
           ("acme", "other-hooks", "signing_secret"): "a-different-secret",
           ("acme", "tg", "secret_token"): TG_SECRET, ("acme", "tg", "bot_token"): TG_TOKEN,
           ("acme", "bad", "declared"): "declared-value",
           ("acme", "bad", "undeclared"): "never-readable"}


@pytest.fixture(scope="module")
def provider_wasm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("providers")
    return {name: build_provider(name, out).read_bytes() for name in PROVIDERS}


@pytest.fixture
def host(engine: ComponentEngine) -> Iterator[ComponentHost]:
    running = ComponentHost(engine, MemoryStateStore(), EnvSecretsProvider({}), threads=2)
    yield running
    running.close()


@pytest.fixture
def secrets() -> ChannelSecrets:
    return ChannelSecrets(dict(SECRETS))


@pytest.fixture
def providers(host: ComponentHost, secrets: ChannelSecrets) -> ProviderHost:
    return ProviderHost(host, secrets)


def load(host: ComponentHost, wasm: dict[str, bytes], name: str, **limits: int):  # type: ignore[no-untyped-def]
    manifest = read_project(PROVIDER_EXAMPLES / name)
    if limits:
        capabilities = manifest.capabilities
        manifest = msgspec.structs.replace(manifest, capabilities=msgspec.structs.replace(
            capabilities, limits=msgspec.structs.replace(capabilities.limits, **limits)))
    return host.load(manifest, wasm[name])


def channel(name: str, provider_type: str, **config: object) -> ChannelCtx:
    return ChannelCtx(env="dev", tenant="acme", team="support", channel=name,
                      provider_type=provider_type, config=json.dumps(config))


def signed(body: str, secret: str = SIGNING_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


HOOKS = channel("hooks", "signed-webhook", reply_url="https://chat.example.com/hooks/reply")
EVENT = {"event_id": "ev-1", "conversation": "town-square", "user": "u-ada", "text": "hello",
         "value": {"choice": "yes"}}


def webhook(body: str, **headers: str) -> HttpIn:
    return HttpIn(method="POST", path="/webhooks/acme/support/hooks",
                  headers=[(k.replace("_", "-"), v) for k, v in headers.items()], body=body)


class TestSignedWebhook:
    """A new channel no service has code for: HMAC-signed webhooks in, signed replies out."""

    async def test_a_correctly_signed_event_becomes_one_message(self, host, provider_wasm,
                                                                 providers) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        assert loaded.world == "provider"
        body = json.dumps(EVENT)
        outcome = await providers.provider_webhook(loaded, HOOKS, webhook(
            body, X_Signature=signed(body)), [])
        assert isinstance(outcome, Done)
        [message] = outcome.result.messages
        assert (message.event_id, message.conversation, message.sender, message.text) == (
            "ev-1", "town-square", "u-ada", "hello")
        assert json.loads(message.value) == {"choice": "yes"}
        assert message.raw == body
        assert outcome.result.response is None

    @pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc",
                                           signed(json.dumps(EVENT), "wrong-secret")])
    async def test_a_missing_or_wrong_signature_is_unauthorized(self, host, provider_wasm,
                                                                providers, signature) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        body = json.dumps(EVENT)
        headers = {} if signature is None else {"X_Signature": signature}
        outcome = await providers.provider_webhook(loaded, HOOKS, webhook(body, **headers), [])
        assert outcome == IngressError("unauthorized", "X-Signature missing or wrong")
        assert outcome.status == 401

    async def test_a_signature_made_with_another_channels_secret_is_unauthorized(
            self, host, provider_wasm, providers, secrets) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        body = json.dumps(EVENT)
        other = channel("other-hooks", "signed-webhook")
        outcome = await providers.provider_webhook(loaded, other, webhook(
            body, X_Signature=signed(body)), [])
        assert isinstance(outcome, IngressError) and outcome.kind == "unauthorized"
        assert secrets.asked[-1] == ("acme", "other-hooks", "signing_secret")

    @pytest.mark.parametrize("body", ["{garbage", "[1, 2]", '"text"',
                                      json.dumps({"event_id": "ev-2", "text": "no target"}),
                                      json.dumps({**EVENT, "user": 42})])
    async def test_a_signed_body_that_is_no_event_is_a_bad_request(
            self, host, provider_wasm, providers, body) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        outcome = await providers.provider_webhook(loaded, HOOKS, webhook(
            body, X_Signature=signed(body)), [])
        assert isinstance(outcome, IngressError) and outcome.kind == "bad-request"
        assert outcome.status == 400

    async def test_a_body_that_is_not_utf8_is_refused_before_the_component(self) -> None:
        assert http_in("POST", "/w", [], b"\xff\xfe{}") == IngressError(
            "bad-request", "the body is not UTF-8 text")

    async def test_a_reply_is_encoded_as_exact_signed_bytes(self, host, provider_wasm,
                                                             providers) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        message = OutboundMessage(id="r-1", conversation="town-square", text="Sign up? ✓",
                                  buttons=[Button("Yes", "yes"), Button("No", "no")])
        plan = await providers.provider_encode(loaded, HOOKS, message, [])
        body = ('{"buttons":[{"title":"Yes","value":"yes"},{"title":"No","value":"no"}],'
                '"conversation":"town-square","in_reply_to":"r-1","text":"Sign up? ✓"}')
        assert body == canonical({"conversation": "town-square", "text": "Sign up? ✓",
                                  "buttons": [{"title": "Yes", "value": "yes"},
                                              {"title": "No", "value": "no"}],
                                  "in_reply_to": "r-1"})
        assert plan == Send([HttpRequest(
            method="POST", url="https://chat.example.com/hooks/reply",
            headers=[("Content-Type", "application/json"), ("X-Signature", signed(body))],
            body=body)])

    async def test_a_channel_without_reply_url_refuses_the_reply(self, host, provider_wasm,
                                                                 providers) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        with pytest.raises(ComponentError) as failure:
            await providers.provider_encode(loaded, channel("hooks", "signed-webhook"),
                                            OutboundMessage(id="r-2", conversation="c"), [])
        assert failure.value.code == "refused"
        assert "config.reply_url" in failure.value.message

    @pytest.mark.parametrize(("status", "headers", "body", "verdict"), [
        (200, [], '{"id": "post-9"}', Delivered("post-9")),
        (201, [], "", Delivered(None)),
        (429, [("Retry-After", "7")], "slow down", Retry(7000, "HTTP 429")),
        (429, [], "", Retry(None, "HTTP 429")),
        (500, [], "oops", Retry(None, "HTTP 500")),
        (503, [("retry-after", "2")], "", Retry(2000, "HTTP 503")),
        (400, [], '{"error": "unknown conversation"}',
         Failed('HTTP 400: {"error": "unknown conversation"}')),
        (404, [], "x" * 500, Failed("HTTP 404: " + "x" * 200)),
    ])
    async def test_answers_are_classified(self, host, provider_wasm, providers, status,
                                          headers, body, verdict) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        message = OutboundMessage(id="r-1", conversation="town-square", text="hi")
        request = HttpRequest("POST", "https://chat.example.com/hooks/reply")
        assert await providers.provider_classify(
            loaded, HOOKS, message, request, HttpResponse(status, headers, body)) == verdict

    async def test_it_describes_itself(self, host, provider_wasm, providers) -> None:
        loaded = load(host, provider_wasm, "signed-webhook")
        described = await providers.provider_describe(loaded)
        assert isinstance(described, CapabilitiesResponse)
        assert described.metadata.provider_id == "signed-webhook"
        assert described.capabilities.supports_webhook_validation


# Telegram: the component against the built-in channel (shared/greentic/providers/telegram.py)

TG = channel("tg", "telegram")
ADA = telegram.User(id=99, first_name="Ada", is_bot=False)
CHAT = telegram.Chat(id=4242, type="private")
NOW = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)


def update_json(**fields: object) -> str:
    return telegram.Update(**fields).to_json()


SHOWN = telegram.Message(message_id=7, date=NOW, chat=CHAT, text="Sign up?", from_user=ADA)
UPDATES = {
    "message": update_json(update_id=1, message=telegram.Message(
        message_id=1, date=NOW, chat=CHAT, text="hello ünïcode", from_user=ADA)),
    "edited": update_json(update_id=2, edited_message=telegram.Message(
        message_id=2, date=NOW, chat=CHAT, text="edited", from_user=ADA)),
    "caption": update_json(update_id=3, message=telegram.Message(
        message_id=3, date=NOW, chat=CHAT, caption="a photo", from_user=ADA)),
    "callback": update_json(update_id=4, callback_query=telegram.CallbackQuery(
        id="4382bfdwdsb323b2d9", from_user=ADA, chat_instance="-51", data="yes",
        message=SHOWN)),
    "callback-without-message": update_json(update_id=5, callback_query=telegram.CallbackQuery(
        id="q-5", from_user=ADA, chat_instance="-51", data="x")),
    "member": update_json(update_id=6, my_chat_member=telegram.ChatMemberUpdated(
        chat=CHAT, from_user=ADA, date=NOW,
        old_chat_member=telegram.ChatMemberLeft(user=ADA),
        new_chat_member=telegram.ChatMemberMember(user=ADA))),
    "odd-fields": json.dumps({"update_id": 7, "message": {"chat": {"id": 1.5}, "from": "9",
                                                          "text": {"a": [1, None]}}}),
    "no-chat": json.dumps({"update_id": 8, "message": {"text": "lost"}}),
}
REFUSED_BODIES = ["{garbage", "", '{"no": "update_id"}', '{"update_id": "7"}', "[1]",
                  '{"update_id": 1, "x": NaN}', '{"update_id": 1, "x": 1e400}',
                  '{"update_id": 1, "x": "\\ud800"}', "[" * 65 + "]" * 65]


def builtin_channel(api_base: str = "") -> ChannelInstance:
    config = {"secret_token": TG_SECRET, "bot_token": TG_TOKEN}
    if api_base:
        config["api_base"] = api_base
    return ChannelInstance(ACME, "tg", "telegram", config)


def builtin_ingress(body: str, token: str | None) -> tuple[str, object]:
    """What TelegramWebhook.receive decides (its own functions, in its order)."""
    if not builtin.secret_matches(token or "", builtin_channel().secret("secret_token")):
        return "refused", 401
    try:
        update = builtin._update(body.encode())
    except web.HTTPBadRequest:
        return "refused", 400
    event, answer = builtin._event(update), builtin._answer(update)
    events = [(e.event_id, e.conversation, e.sender, e.text, e.value, e.thread, e.raw)
              for e in ([event] if event else [])]
    shown = None if answer is None else (answer.status, answer.headers["Content-Type"],
                                         answer.body)
    return "done", (events, shown)


async def component_ingress(providers: ProviderHost, loaded, body: str,  # type: ignore[no-untyped-def]
                            token: str | None) -> tuple[str, object]:
    headers = {} if token is None else {"X_Telegram_Bot_Api_Secret_Token": token}
    outcome = await providers.provider_webhook(loaded, TG, webhook(body, **headers), [])
    if isinstance(outcome, IngressError):
        return "refused", outcome.status
    assert isinstance(outcome, Done)
    events = [(m.event_id, m.conversation, m.sender, m.text,
               None if m.value is None else json.loads(m.value), m.thread, json.loads(m.raw))
              for m in outcome.result.messages]
    answer = outcome.result.response
    shown = None if answer is None else (answer.status, answer.header("Content-Type"),
                                         answer.body_bytes())
    return "done", (events, shown)


class Captured(msgspec.Struct):
    method: str
    url: str
    content_type: str
    body: bytes


class BotApiDouble:
    """A local Bot API: records each request and answers with the next scripted answer."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.answers: list[tuple[int, dict[str, str], str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Captured(request.method, str(request.url),
                                      request.headers.get("Content-Type", ""),
                                      await request.read()))
        status, headers, body = self.answers.pop(0) if self.answers else (
            200, {}, '{"ok": true, "result": {"message_id": 1}}')
        return web.Response(status=status, headers=headers, text=body)


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[BotApiDouble, str]]:
    double = BotApiDouble()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", double.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield double, f"http://127.0.0.1:{port}/tg"
    await runner.cleanup()


def reply(text: str, buttons: list[tuple[str, str]]) -> Envelope:
    return Envelope(id="r-1", ctx=ACME, channel="tg", provider="telegram", conversation="conv-1",
                    direction="out", text=text, reply_target="4242",
                    buttons=[EnvelopeButton(title, value) for title, value in buttons])


def outbound(envelope: Envelope) -> OutboundMessage:
    # as egress hands a reply to a component channel
    return OutboundMessage(id=envelope.id,
                           conversation=envelope.reply_target or envelope.conversation,
                           text=envelope.text,
                           buttons=[Button(b.title, b.value or b.title) for b in envelope.buttons])


class TestTelegramComponent:
    """The Telegram component decides exactly what the built-in channel does."""

    @pytest.mark.parametrize("name", sorted(UPDATES))
    async def test_updates_give_the_built_ins_events_and_webhook_answer(
            self, host, provider_wasm, providers, name) -> None:
        loaded = load(host, provider_wasm, "telegram")
        body = UPDATES[name]
        expected = builtin_ingress(body, TG_SECRET)
        assert expected[0] == "done"
        assert await component_ingress(providers, loaded, body, TG_SECRET) == expected

    async def test_a_click_is_answered_in_the_webhook_response(self, host, provider_wasm,
                                                               providers) -> None:
        loaded = load(host, provider_wasm, "telegram")
        _, (events, answer) = await component_ingress(providers, loaded, UPDATES["callback"],
                                                      TG_SECRET)
        assert events[0][3:5] == ("yes", "yes")
        assert json.loads(answer[2]) == {"method": "answerCallbackQuery",
                                         "callback_query_id": "4382bfdwdsb323b2d9"}

    @pytest.mark.parametrize(("body", "token"), [
        *((b, TG_SECRET) for b in REFUSED_BODIES),
        (UPDATES["message"], None), (UPDATES["message"], "wrong"), (UPDATES["message"], ""),
        (UPDATES["message"], TG_SECRET + " ")])
    async def test_refusals_match_the_built_in(self, host, provider_wasm, providers, body,
                                               token) -> None:
        loaded = load(host, provider_wasm, "telegram")
        expected = builtin_ingress(body, token)
        assert expected[0] == "refused"
        assert await component_ingress(providers, loaded, body, token) == expected

    @pytest.mark.parametrize(("text", "buttons"), [
        ("acme heard: hello", []),
        ("", []),
        ("Sign up? ✓ «ünïcode» 🎉", [("Yes", "yes"), ("No", "")]),
        ("pick", [("Long", "v" * 100), ("Émoji 🎉", "🎉" * 70)]),
    ])
    async def test_encode_gives_the_request_the_built_in_sends(
            self, host, provider_wasm, providers, bot_api, text, buttons) -> None:
        double, base = bot_api
        envelope = reply(text, buttons)
        async with aiohttp.ClientSession() as http:
            await builtin.TelegramSender(http).send(envelope, builtin_channel(base))
        [sent] = double.requests
        loaded = load(host, provider_wasm, "telegram")
        plan = await providers.provider_encode(loaded, channel("tg", "telegram", api_base=base),
                                               outbound(envelope), [])
        assert isinstance(plan, Send)
        [request] = plan.requests
        assert (request.method, request.url) == (sent.method, sent.url)
        assert dict(request.headers)["Content-Type"] == sent.content_type
        assert request.body.encode() == sent.body

    async def test_encode_defaults_to_the_public_bot_api(self, host, provider_wasm,
                                                         providers) -> None:
        loaded = load(host, provider_wasm, "telegram")
        plan = await providers.provider_encode(loaded, TG, outbound(reply("hi", [])), [])
        assert plan.requests[0].url == f"https://api.telegram.org/bot{TG_TOKEN}/sendMessage"

    @pytest.mark.parametrize(("status", "headers", "body"), [
        (200, {}, '{"ok": true, "result": {"message_id": 77}}'),
        (200, {}, '{"ok": false, "description": "Bad Request: message is too long"}'),
        (200, {}, "not json"),
        (429, {"Retry-After": "7"}, '{"ok": false}'),
        (429, {}, '{"ok": false, "parameters": {"retry_after": 3}}'),
        (429, {}, '{"ok": false, "parameters": {"retry_after": 1.5}}'),
        (429, {}, ""),
        (500, {}, '{"ok": false}'),
        (502, {"Retry-After": "2"}, "bad gateway"),
        (400, {}, '{"ok": false, "description": "Bad Request: chat not found"}'),
        (403, {}, '{"ok": false, "description": "Forbidden: bot was blocked by the user"}'),
    ])
    async def test_answers_are_classified_as_the_built_in_does(
            self, host, provider_wasm, providers, bot_api, status, headers, body) -> None:
        double, base = bot_api
        double.answers.append((status, headers, body))
        envelope = reply("hi", [])
        async with aiohttp.ClientSession() as http:
            try:
                await builtin.TelegramSender(http).send(envelope, builtin_channel(base))
                expected: object = "delivered"
            except RetryLater as exc:
                expected = ("retry", str(exc), None if exc.delay_s is None
                            else round(exc.delay_s * 1000))
            except DeadLetter as exc:
                expected = ("failed", str(exc))
        loaded = load(host, provider_wasm, "telegram")
        verdict = await providers.provider_classify(
            loaded, TG, outbound(envelope), HttpRequest("POST", f"{base}/bot{TG_TOKEN}/x"),
            HttpResponse(status, list(headers.items()), body))
        shown = ("delivered" if isinstance(verdict, Delivered) else
                 ("retry", verdict.reason, verdict.after_ms) if isinstance(verdict, Retry) else
                 ("failed", verdict.reason))
        assert shown == expected
        if status == 200 and '"message_id"' in body:
            assert verdict == Delivered("77")


# containment: hostile providers

def hostile_channel(mode: str) -> ChannelCtx:
    return channel("bad", "hostile", mode=mode)


async def fine(providers: ProviderHost, loaded) -> None:  # type: ignore[no-untyped-def]
    outcome = await providers.provider_webhook(loaded, hostile_channel("fine"),
                                               webhook("still here"), [])
    assert isinstance(outcome, Done)
    assert outcome.result.messages[0].text == "fine: still here"


async def timed(call) -> tuple[ComponentError, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    with pytest.raises(ComponentError) as failure:
        await call
    return failure.value, time.monotonic() - started


class TestContainment:
    """A provider that misbehaves gets a typed error within about its deadline, and the host
    serves the next call as if nothing happened."""

    @pytest.mark.parametrize(("mode", "function", "code"), [
        ("trap", "webhook", "trap"), ("trap", "encode", "trap"), ("trap", "classify", "trap"),
        ("loop", "webhook", "timeout"), ("loop", "encode", "timeout"),
        ("loop", "classify", "timeout"),
        ("huge", "webhook", "output-too-large"), ("huge", "encode", "output-too-large"),
        ("many", "webhook", "output-too-large"),
        ("bad-json", "webhook", "bad-output"), ("bad-url", "encode", "bad-output"),
        ("bad-header", "encode", "bad-output"),
    ])
    async def test_misbehaviour_is_a_typed_error_and_the_host_keeps_serving(
            self, host, provider_wasm, providers, mode, function, code) -> None:
        # fuel to spare: the deadline is what stops the loop (the fuel test is below)
        loaded = load(host, provider_wasm, "hostile", timeout_ms=300, fuel=10**12)
        ctx = hostile_channel(mode)
        message = OutboundMessage(id="r", conversation="c", text="t")
        call = {"webhook": lambda: providers.provider_webhook(loaded, ctx, webhook("{}"), []),
                "encode": lambda: providers.provider_encode(loaded, ctx, message, []),
                "classify": lambda: providers.provider_classify(
                    loaded, ctx, message, HttpRequest("POST", "https://example.com/send"),
                    HttpResponse(200))}[function]
        error, elapsed = await timed(call())
        assert error.code == code, error.message
        assert elapsed < 2 * 0.300, f"{mode} took {elapsed:.3f} s"
        await fine(providers, loaded)

    async def test_the_most_messages_under_the_output_limit_are_read_within_the_deadline(
            self, host, provider_wasm, providers) -> None:
        loaded = load(host, provider_wasm, "hostile", timeout_ms=300, fuel=10**12)
        started = time.monotonic()
        outcome = await providers.provider_webhook(loaded, hostile_channel("crowd"),
                                                   webhook("{}"), [])
        assert len(outcome.result.messages) == 1_400
        assert time.monotonic() - started < 2 * 0.300

    async def test_a_loop_runs_out_of_fuel_before_a_long_deadline(self, host, provider_wasm,
                                                                 providers) -> None:
        loaded = load(host, provider_wasm, "hostile", timeout_ms=5000, fuel=100_000_000)
        error, elapsed = await timed(providers.provider_webhook(
            loaded, hostile_channel("loop"), webhook("{}"), []))
        assert error.code == "fuel"
        assert elapsed < 2.5
        await fine(providers, loaded)

    async def test_a_guest_error_names_the_python_exception(self, host, provider_wasm,
                                                            providers) -> None:
        loaded = load(host, provider_wasm, "hostile")
        error, _ = await timed(providers.provider_webhook(loaded, hostile_channel("trap"),
                                                          webhook("{}"), []))
        assert "RuntimeError: the provider gave up" in error.message

    async def test_only_declared_secrets_of_the_calling_channel_are_readable(
            self, host, provider_wasm, providers, secrets) -> None:
        loaded = load(host, provider_wasm, "hostile")
        outcome = await providers.provider_webhook(loaded, hostile_channel("secrets"),
                                                   webhook("{}"), [])
        assert outcome.result.messages[0].text == "declared-value error:denied"
        assert ("acme", "bad", "undeclared") not in secrets.asked

    async def test_concurrent_calls_of_different_channels_do_not_wait_on_a_loop(
            self, host, provider_wasm, providers) -> None:
        loaded = load(host, provider_wasm, "hostile", timeout_ms=300)
        spinning = asyncio.ensure_future(providers.provider_webhook(
            loaded, hostile_channel("loop"), webhook("{}"), []))
        await asyncio.sleep(0.02)
        started = time.monotonic()
        await fine(providers, loaded)
        assert time.monotonic() - started < 0.25
        with pytest.raises(ComponentError):
            await spinning

    async def test_a_non_provider_is_not_called_as_one(self, host, provider_wasm,
                                                       providers, guests) -> None:
        from greentic.types.component import ComponentManifest
        echo = host.load(ComponentManifest(id="echo"), guests["echo"].read_bytes())
        error, _ = await timed(providers.provider_describe(echo))
        assert error.code == "bad-input"


# refused at load: a provider may not make requests itself

FAKE_WASI = {
    "wasi-http": "package wasi:http@0.2.9;\n\ninterface outgoing-handler {\n"
                 "  handle: func(url: string) -> string;\n}\n",
    "wasi-sockets": "package wasi:sockets@0.2.9;\n\ninterface tcp {\n"
                    "  connect: func(address: string) -> bool;\n}\n",
}
"""Stand-ins with the real interface names (the check is by name; the WASI WIT is not ours)."""


def dummy_provider(tmp_path: Path, imports: list[str], world: str = "provider") -> bytes:
    """A provider component (functions that trap, made by `wasm-tools component embed
    --dummy`) with extra `imports`."""
    wit = tmp_path / "wit"
    wit.mkdir(parents=True)
    lines = "".join(f"  import {name};\n" for name in imports)
    (wit / "world.wit").write_text(
        "package local:dummy;\n\nworld dummy {\n"
        + (f"  include greentic-py:messaging-provider/{world}@0.1.0;\n" if world == "provider"
           else "  export greentic-py:messaging-provider/ingress@0.1.0;\n")
        + lines + "}\n")
    assembled = assemble_wit(wit, tmp_path / "assembled")
    for package in ("greentic-http-1.0.0", "greentic-http-1.1.0"):  # Greentic's, unchanged
        shutil.copytree(WIT_DIR / package, assembled / "deps" / package)
    for name, text in FAKE_WASI.items():
        (assembled / "deps" / name).mkdir()
        (assembled / "deps" / name / "package.wit").write_text(text)
    tools = Path(sys.executable).parent / "wasm-tools"
    core, component = tmp_path / "core.wasm", tmp_path / "component.wasm"
    subprocess.run([tools, "component", "embed", "--dummy", assembled, "--world", "dummy",
                    "-o", core], check=True, capture_output=True)
    subprocess.run([tools, "component", "new", core, "-o", component], check=True,
                   capture_output=True)
    return component.read_bytes()


def provider_manifest(**capabilities: object):  # type: ignore[no-untyped-def]
    from greentic.types.component import ComponentCapabilities, ComponentManifest
    return ComponentManifest(id="dummy", world="provider", capabilities=ComponentCapabilities(
        host=["state", "secrets", "log", "http"], **capabilities))


class TestRefusedAtLoad:
    """A provider component that could make a request itself is refused, naming the import."""

    @pytest.mark.parametrize("name", ["greentic:http/http-client@1.1.0",
                                      "greentic:http/http-client@1.0.0",
                                      "wasi:http/outgoing-handler@0.2.9",
                                      "wasi:sockets/tcp@0.2.9", "greentic-py:host/http@0.1.0"])
    def test_a_provider_importing_http_or_sockets_is_refused(self, host, tmp_path,
                                                             name) -> None:
        data = dummy_provider(tmp_path, [name])
        with pytest.raises(ComponentLoadError) as refused:
            host.load(provider_manifest(), data)
        assert name in str(refused.value)
        assert "may not make requests themselves" in str(refused.value)

    def test_the_same_provider_without_them_loads(self, host, tmp_path) -> None:
        loaded = host.load(provider_manifest(),
                           dummy_provider(tmp_path, ["greentic:secrets-store/secrets-store@1.0.0"]))
        assert loaded.world == "provider"

    def test_a_provider_missing_an_export_is_refused_naming_it(self, host, tmp_path) -> None:
        with pytest.raises(ComponentLoadError) as refused:
            host.load(provider_manifest(), dummy_provider(tmp_path, [], world="ingress-only"))
        assert "greentic-py:messaging-provider/egress@0.1.0" in str(refused.value)

    def test_built_python_providers_have_no_sockets_import(self, host, provider_wasm) -> None:
        for name in PROVIDERS:
            loaded = load(host, provider_wasm, name)
            assert not [i for i in loaded.imports if i.startswith(("wasi:sockets", "wasi:http"))]


class TestScaffold:
    """`greentic component new NAME --world provider` makes a provider that builds and works."""

    async def test_a_scaffolded_provider_builds_and_answers(self, host, tmp_path) -> None:
        from click.testing import CliRunner

        from greentic.cli.component import component
        from tests.guests import BUILD_CACHE

        runner = CliRunner()
        made = runner.invoke(component, ["new", "my-provider", "--world", "provider",
                                         "--dir", str(tmp_path)])
        assert made.exit_code == 0, made.output
        built = runner.invoke(component, ["build", str(tmp_path / "my-provider"),
                                          "--cache-dir", str(BUILD_CACHE)])
        assert built.exit_code == 0, built.output
        project = tmp_path / "my-provider"
        loaded = host.load(read_project(project), (project / "component.wasm").read_bytes())
        calls = ProviderHost(host, ChannelSecrets({("acme", "mine", "webhook_token"): "t0k"}))
        mine = channel("mine", "my-provider", reply_url="https://example.com/in")
        body = json.dumps({"id": "1", "conversation": "c", "user": "u", "text": "hi"})
        outcome = await calls.provider_webhook(loaded, mine, webhook(body, X_Webhook_Token="t0k"),
                                               [])
        assert isinstance(outcome, Done) and outcome.result.messages[0].text == "hi"
        refused = await calls.provider_webhook(loaded, mine, webhook(body), [])
        assert isinstance(refused, IngressError) and refused.status == 401
        message = OutboundMessage(id="r", conversation="c", text="hello")
        plan = await calls.provider_encode(loaded, mine, message, [])
        assert plan == Send([HttpRequest("POST", "https://example.com/in",
                                         [("Content-Type", "application/json")],
                                         '{"conversation": "c", "text": "hello"}')])
        assert await calls.provider_classify(loaded, mine, message, plan.requests[0],
                                             HttpResponse(503, [("Retry-After", "4")])) == Retry(
            4000, "HTTP 503")

"""Slack and Telegram end to end against local doubles that check the exact requests."""

import asyncio
import datetime
import json
import time
import urllib.error
import urllib.request

import aiohttp
import nats
import pytest
import telegram
from slack_sdk.signature import SignatureVerifier

from greentic.bus.topology import DEADLETTER_STREAM, HOPS
from greentic.hosting.launcher import free_port
from tests.integration.platform import Platform
from tests.integration.provider_double import ProviderDouble, channel_platform, provider_double

DOUBLE_PORT = free_port()
SLACK_SECRET, SLACK_TOKEN = "8f742231b10e8888abcd99yyyzzz85a5", "xoxb-test-token"
TELEGRAM_SECRET, TELEGRAM_TOKEN = "tg-secret-token", "123456:ABC-test"
CHANNELS = {
    "slack": {"provider": "slack", "flow": "acme-pack/echo", "config": {
        "signing_secret": SLACK_SECRET, "bot_token_env": "TEST_SLACK_BOT_TOKEN",
        "api_base": f"http://127.0.0.1:{DOUBLE_PORT}/slack"}},
    "telegram": {"provider": "telegram", "flow": "acme-pack/echo", "config": {
        "secret_token": TELEGRAM_SECRET, "bot_token": TELEGRAM_TOKEN,
        "api_base": f"http://127.0.0.1:{DOUBLE_PORT}/telegram"}},
}


ADMIN_TOKEN, ADMIN_PORT = "channels-admin-token-0123456789", free_port()
platform = channel_platform("channels", CHANNELS, TEST_SLACK_BOT_TOKEN=SLACK_TOKEN,
                            GREENTIC_ADMIN_TOKENS=f"acme:{ADMIN_TOKEN}",
                            GREENTIC_ADMIN_PORT=str(ADMIN_PORT))


double = provider_double(DOUBLE_PORT)


def telegram_update(update_id: int, text: str, chat_id: int = 4242) -> bytes:
    update = telegram.Update(update_id=update_id, message=telegram.Message(
        message_id=update_id, date=datetime.datetime.now(datetime.UTC),
        chat=telegram.Chat(id=chat_id, type="private"), text=text,
        from_user=telegram.User(id=99, first_name="Ada", is_bot=False)))
    return update.to_json().encode()


def slack_headers(body: bytes, timestamp: int | None = None, secret: str = SLACK_SECRET,
                  content_type: str = "application/json") -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    return {"X-Slack-Request-Timestamp": stamp, "Content-Type": content_type,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(
                timestamp=stamp, body=body)}


def slack_event(event_id: str, text: str) -> bytes:
    return json.dumps({"type": "event_callback", "event_id": event_id, "team_id": "T1",
                       "event": {"type": "message", "user": "U42", "text": text,
                                 "channel": "C0FFEE", "ts": "1700000000.000100"}}).encode()


async def ingress_count(platform: Platform) -> int:
    nc = await nats.connect(platform.nats_url)
    try:
        return (await nc.jetstream().stream_info(HOPS["ingress"].stream)).state.messages
    finally:
        await nc.close()


async def post(http: aiohttp.ClientSession, platform: Platform, channel: str, body: bytes,
               headers: dict[str, str]) -> int:
    async with http.post(f"{platform.url}/webhooks/acme/support/{channel}", data=body,
                         headers=headers) as response:
        return response.status


async def test_a_telegram_update_is_answered_with_send_message(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    status = await post(http, platform, "telegram", telegram_update(1, "hello"),
                        {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                         "Content-Type": "application/json"})
    assert status == 200
    [request] = await double.wait_for(1)
    assert (request.method, request.path) == ("POST", f"/telegram/bot{TELEGRAM_TOKEN}/sendMessage")
    assert request.json == {"chat_id": "4242", "text": "acme heard: hello"}
    assert request.headers["Content-Type"].startswith("application/json")


async def test_a_telegram_button_click_is_answered_in_the_webhook_response_and_the_flow_runs(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    chat = telegram.Chat(id=4343, type="private")
    ada = telegram.User(id=99, first_name="Ada", is_bot=False)
    shown = telegram.Message(message_id=7, date=datetime.datetime.now(datetime.UTC), chat=chat,
                             text="Sign up?", from_user=ada)
    click = telegram.Update(update_id=20, callback_query=telegram.CallbackQuery(
        id="4382bfdwdsb323b2d9", from_user=ada, chat_instance="-51", data="yes", message=shown))
    async with http.post(f"{platform.url}/webhooks/acme/support/telegram",
                         data=click.to_json().encode(),
                         headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}) as answer:
        assert answer.status == 200
        # Telegram runs this Bot API call for us: the client's spinner stops at once
        assert await answer.json() == {"method": "answerCallbackQuery",
                                       "callback_query_id": "4382bfdwdsb323b2d9"}
    [request] = await double.wait_for(1)
    assert request.path == f"/telegram/bot{TELEGRAM_TOKEN}/sendMessage"
    assert request.json == {"chat_id": "4343", "text": "acme heard: yes"}


async def test_a_telegram_duplicate_delivery_gets_one_reply(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    body = telegram_update(2, "once")
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    assert [await post(http, platform, "telegram", body, headers) for _ in range(3)] == [200] * 3
    await double.wait_for(1)
    await asyncio.sleep(2)  # a second reply would have arrived by now
    assert len(double.requests) == 1


@pytest.mark.parametrize(("channel", "body", "headers", "status"), [
    ("telegram", telegram_update(3, "x"), {}, 401),
    ("telegram", telegram_update(3, "x"), {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, 401),
    ("telegram", b"{garbage", {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}, 400),
    ("telegram", b'{"no": "update_id"}', {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
     400),
    ("slack", slack_event("Ev1", "x"), {"Content-Type": "application/json"}, 401),
    ("slack", slack_event("Ev1", "x"), slack_headers(slack_event("Ev1", "x"), secret="other"),
     401),
    ("slack", slack_event("Ev1", "x"),
     slack_headers(slack_event("Ev1", "x"), timestamp=int(time.time()) - 600), 401),
    ("slack", b"{garbage", slack_headers(b"{garbage"), 400),
    ("nope", b"{}", {}, 404),
    ("telegram", b"x" * 300_000, {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}, 413),
])
async def test_bad_webhook_requests_are_refused_and_nothing_is_published(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble, channel: str,
        body: bytes, headers: dict[str, str], status: int) -> None:
    before = await ingress_count(platform)
    assert await post(http, platform, channel, body, headers) == status
    assert await ingress_count(platform) == before
    assert double.requests == []


async def test_slack_url_verification_is_answered_with_the_challenge(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aB"}).encode()
    async with http.post(f"{platform.url}/webhooks/acme/support/slack", data=body,
                         headers=slack_headers(body)) as response:
        assert response.status == 200
        assert await response.json() == {"challenge": "3eZbrw1aB"}


async def test_a_slack_message_is_answered_in_its_thread_and_retries_are_ignored(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    body = slack_event("Ev42", "hello slack")
    assert await post(http, platform, "slack", body, slack_headers(body)) == 200
    retry = {**slack_headers(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"}
    assert await post(http, platform, "slack", body, retry) == 200
    [request] = await double.wait_for(1)
    assert (request.method, request.path) == ("POST", "/slack/api/chat.postMessage")
    assert request.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert request.json == {"channel": "C0FFEE", "text": "acme heard: hello slack",
                            "thread_ts": "1700000000.000100"}
    await asyncio.sleep(2)
    assert len(double.requests) == 1


async def test_a_slack_button_click_continues_the_conversation(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    payload = {"type": "block_actions", "trigger_id": "13345224609.738474920.8088930838d88f",
               "user": {"id": "U42"}, "channel": {"id": "C0FFEE"},
               "container": {"message_ts": "1700000001.000200"},
               "actions": [{"action_id": "button-0", "value": "Yes", "type": "button",
                            "action_ts": "1700000002.1"}]}
    body = f"payload={json.dumps(payload)}".encode()
    headers = slack_headers(body, content_type="application/x-www-form-urlencoded")
    assert await post(http, platform, "slack", body, headers) == 200
    [request] = await double.wait_for(1)
    assert request.json["text"] == "acme heard: Yes"
    assert request.json["thread_ts"] == "1700000001.000200"


async def test_egress_honours_retry_after_and_retries_5xx_then_delivers_exactly_once(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    double.script = [(429, {"Retry-After": "1"}, {"ok": False}), (500, {}, {"ok": False}),
                     (502, {}, {"ok": False})]
    started = time.monotonic()
    assert await post(http, platform, "telegram", telegram_update(10, "persist"),
                      {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}) == 200
    requests = await double.wait_for(4, within_s=30)
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert [r.json["text"] for r in requests] == ["acme heard: persist"] * 4
    await asyncio.sleep(3)
    assert len(double.requests) == 4, "delivered once, then never again"


async def test_a_permanent_provider_refusal_is_dead_lettered_with_the_reason(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    nc = await nats.connect(platform.nats_url)
    js = nc.jetstream()
    before = (await js.stream_info(DEADLETTER_STREAM)).state.last_seq
    double.script = [(400, {}, {"ok": False, "description": "Bad Request: chat not found"})]
    assert await post(http, platform, "telegram", telegram_update(11, "lost"),
                      {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}) == 200
    await double.wait_for(1)
    deadline = time.monotonic() + 10
    while (await js.stream_info(DEADLETTER_STREAM)).state.last_seq == before:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    dead = await js.get_msg(DEADLETTER_STREAM, before + 1)
    await nc.close()
    assert dead.headers["Greentic-Dead-Stage"] == "egress"
    assert "telegram refused the message: HTTP 400" in dead.headers["Greentic-Dead-Reason"]
    assert "chat not found" in dead.headers["Greentic-Dead-Reason"]
    assert TELEGRAM_TOKEN not in dead.headers["Greentic-Dead-Reason"]


def admin_status(token: str, path: str = "/admin/sessions") -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{ADMIN_PORT}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_no_secret_value_appears_in_any_log_or_error(platform: Platform) -> None:
    """Runs after the module's other tests: tokens were used, signatures checked, requests
    refused and dead-lettered, the admin API called with good and near-miss tokens — none of
    the secret values may show up in a log line or an error answer."""
    answers = [admin_status(token) for token in (ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x",
                                                 f"acme:{ADMIN_TOKEN}", ADMIN_TOKEN)]
    answers.append(admin_status(ADMIN_TOKEN, "/admin/sessions?tenant=globex"))
    answers.append(admin_status(ADMIN_TOKEN, "/admin/sessions/dev.globex.sales.webchat.c"))
    assert [status for status, _ in answers] == [401, 401, 401, 200, 403, 403]
    for service in ("ingress", "router", "executor", "egress", "pack-loader"):
        log = platform.log(service)
        assert log, service
        for value in (SLACK_SECRET, SLACK_TOKEN, TELEGRAM_SECRET, TELEGRAM_TOKEN, ADMIN_TOKEN):
            assert value not in log, (service, value)
            assert all(value.encode() not in body for _, body in answers)

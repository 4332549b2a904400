"""WhatsApp Cloud API end to end against a local double; fixtures checked with pywa."""

import hashlib
import hmac
import json

import aiohttp
from pywa import WhatsApp
from pywa.types import CallbackButton, Message

from greentic.hosting.launcher import free_port
from tests.integration.platform import Platform
from tests.integration.provider_double import ProviderDouble, channel_platform, provider_double

DOUBLE_PORT = free_port()
APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN, PHONE_ID = "app-secret", "verify-me", "EAAG-test", "1234"
CHANNELS = {"whatsapp": {"provider": "whatsapp", "flow": "acme-pack/echo", "config": {
    "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "access_token": ACCESS_TOKEN,
    "phone_number_id": PHONE_ID, "api_base": f"http://127.0.0.1:{DOUBLE_PORT}/v21.0"}}}
PYWA = WhatsApp(phone_id=PHONE_ID, token=ACCESS_TOKEN, app_secret=APP_SECRET,
                verify_token=VERIFY_TOKEN, server=None)
CONTACT = {"profile": {"name": "Ada"}, "wa_id": "4917000", "user_id": "US.1"}


platform = channel_platform("whatsapp", CHANNELS)


double = provider_double(DOUBLE_PORT, default_body={"messages": [{"id": "wamid.out"}]})


def webhook(message: dict) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp", "contacts": [CONTACT], "messages": [message],
            "metadata": {"display_phone_number": "15550001", "phone_number_id": PHONE_ID}}}]}]}


def signed(update: dict, secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(update).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}


async def post(http: aiohttp.ClientSession, platform: Platform, body: bytes,
               headers: dict[str, str]) -> int:
    async with http.post(f"{platform.url}/webhooks/acme/support/whatsapp", data=body,
                         headers=headers) as response:
        return response.status


async def test_the_subscription_check_echoes_the_challenge_only_for_the_right_token(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    url = f"{platform.url}/webhooks/acme/support/whatsapp"
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444"}
    async with http.get(url, params=good) as response:
        assert (response.status, await response.text()) == (200, "1158201444")
    async with http.get(url, params={**good, "hub.verify_token": "wrong"}) as response:
        assert response.status == 403


async def test_a_text_message_is_answered_through_the_messages_api(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    update = webhook({"from": "4917000", "id": "wamid.A1", "timestamp": "1700000000",
                      "type": "text", "text": {"body": "hola"}})
    assert Message.from_update(PYWA, update).text == "hola"  # the fixture is real WhatsApp
    assert await post(http, platform, *signed(update)) == 200
    [request] = await double.wait_for(1)
    assert (request.method, request.path) == ("POST", f"/v21.0/{PHONE_ID}/messages")
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.json == {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": "4917000", "type": "text", "text": {"body": "acme heard: hola"}}


async def test_a_button_reply_is_the_users_input(platform: Platform,
                                                 http: aiohttp.ClientSession,
                                                 double: ProviderDouble) -> None:
    update = webhook({"from": "4917000", "id": "wamid.B1", "timestamp": "1700000000",
                      "type": "interactive", "context": {"from": "15550001", "id": "wamid.x"},
                      "interactive": {"type": "button_reply",
                                      "button_reply": {"id": "yes", "title": "Yes"}}})
    assert CallbackButton.from_update(PYWA, update).data == "yes"
    assert await post(http, platform, *signed(update)) == 200
    [request] = await double.wait_for(1)
    assert request.json["text"] == {"body": "acme heard: Yes"}


async def test_status_callbacks_are_accepted_and_ignored(platform: Platform,
                                                         http: aiohttp.ClientSession,
                                                         double: ProviderDouble) -> None:
    update = webhook({"from": "4917000", "id": "wamid.C1", "timestamp": "1", "type": "text",
                      "text": {"body": "x"}})
    value = update["entry"][0]["changes"][0]["value"]
    del value["messages"]
    value["statuses"] = [{"id": "wamid.out", "status": "delivered", "timestamp": "1",
                          "recipient_id": "4917000"}]
    assert await post(http, platform, *signed(update)) == 200
    assert await post(http, platform, *signed(update, secret="forged")) == 401
    body, headers = signed(update)
    assert await post(http, platform, body, {**headers, "X-Hub-Signature-256": ""}) == 401
    assert await post(http, platform, b"{oops", signed({})[1] | {
        "X-Hub-Signature-256": "sha256=" + hmac.new(APP_SECRET.encode(), b"{oops",
                                                    hashlib.sha256).hexdigest()}) == 400
    assert double.requests == []

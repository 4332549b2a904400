"""Teams (Bot Framework) end to end: JWT-verified activities in, replies via serviceUrl."""

import time

import aiohttp
import jwt
import pytest
from botbuilder.schema import Activity, ChannelAccount, ConversationAccount
from cryptography.hazmat.primitives.asymmetric import rsa

from greentic.hosting.launcher import free_port
from tests.integration.platform import Platform
from tests.integration.provider_double import ProviderDouble, channel_platform, provider_double

DOUBLE_PORT = free_port()
DOUBLE = f"http://127.0.0.1:{DOUBLE_PORT}"
APP_ID, APP_PASSWORD = "5d1b3a3c-app-id", "app-password"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = {**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1",
       "use": "sig"}
CHANNELS = {"teams": {"provider": "teams", "flow": "acme-pack/echo", "config": {
    "app_id": APP_ID, "app_password": APP_PASSWORD, "jwks": {"keys": [JWK]},
    "token_url": f"{DOUBLE}/botframework.com/oauth2/v2.0/token",
    "service_url_prefixes": [f"{DOUBLE}/teams/"]}}}
SERVICE_URL = f"{DOUBLE}/teams/emea/"


platform = channel_platform("teams", CHANNELS)


double = provider_double(DOUBLE_PORT, default_body={"id": "reply-1"}, bodies_by_path={
    "/botframework.com/oauth2/v2.0/token": {"token_type": "Bearer", "expires_in": 3600,
                                             "access_token": "bf-access-token"}})


def token(key=KEY, kid: str = "k1", **overrides) -> str:
    claims = {"iss": "https://api.botframework.com", "aud": APP_ID, "serviceUrl": SERVICE_URL,
              "nbf": int(time.time()) - 10, "exp": int(time.time()) + 3600, **overrides}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def activity(activity_id: str, text: str = "", value: dict | None = None) -> dict:
    return Activity(type="message", id=activity_id, text=text or None, value=value,
                    service_url=SERVICE_URL, channel_id="msteams",
                    from_property=ChannelAccount(id="29:1user", name="Ada"),
                    recipient=ChannelAccount(id=f"28:{APP_ID}"),
                    conversation=ConversationAccount(id="a:1conversation-xyz")).serialize()


async def post(http: aiohttp.ClientSession, platform: Platform, body: dict,
               bearer: str | None) -> int:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with http.post(f"{platform.url}/webhooks/acme/support/teams", json=body,
                         headers=headers) as response:
        return response.status


async def test_a_teams_message_is_answered_in_its_conversation(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    assert await post(http, platform, activity("act-1", "hi teams"), token()) == 200
    token_request, reply = await double.wait_for(2)
    assert token_request.path == "/botframework.com/oauth2/v2.0/token"
    assert token_request.json == {"grant_type": "client_credentials", "client_id": APP_ID,
                                  "client_secret": APP_PASSWORD,
                                  "scope": "https://api.botframework.com/.default"}
    assert reply.path == "/teams/emea/v3/conversations/a:1conversation-xyz/activities/act-1"
    assert reply.headers["Authorization"] == "Bearer bf-access-token"
    assert reply.json == {"type": "message", "text": "acme heard: hi teams",
                          "conversation": {"id": "a:1conversation-xyz"}, "replyToId": "act-1"}


async def test_an_adaptive_card_submit_is_the_users_input(
        platform: Platform, http: aiohttp.ClientSession, double: ProviderDouble) -> None:
    assert await post(http, platform, activity("act-2", value={"text": "Yes"}), token()) == 200
    requests = await double.wait_for(1)
    replies = [r for r in requests if "/activities/" in r.path]
    while not replies:
        requests = await double.wait_for(len(requests) + 1)
        replies = [r for r in requests if "/activities/" in r.path]
    assert replies[0].json["text"] == "acme heard: Yes"


@pytest.mark.parametrize(("bearer", "status"), [
    (None, 401),
    ("not-a-jwt", 403),
    (token(key=OTHER_KEY), 403),
    (token(kid="unknown"), 403),
    (token(aud="someone-else"), 403),
    (token(iss="https://evil.example"), 403),
    (token(exp=int(time.time()) - 3600), 403),
    (token(serviceUrl="https://evil.example/"), 403),
])
async def test_invalid_tokens_are_refused(platform: Platform, http: aiohttp.ClientSession,
                                          double: ProviderDouble, bearer: str | None,
                                          status: int) -> None:
    assert await post(http, platform, activity("act-x", "sneaky"), bearer) == status
    assert double.requests == []

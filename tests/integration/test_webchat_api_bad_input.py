"""Bad input at the WebChat (Direct Line) API: a clear 4xx, nothing published, still serving."""

import aiohttp
import pytest

from greentic.providers.webchat.client import DirectLineClient
from tests.integration.platform import Platform

ACTIVITY_PATH = "/v3/directline/conversations/{}/activities"


@pytest.fixture
async def client(platform: Platform, http: aiohttp.ClientSession) -> DirectLineClient:
    client = DirectLineClient(platform.url, http)
    await client.open("acme", "support", "webchat")
    return client


async def post_raw(platform: Platform, http: aiohttp.ClientSession, client: DirectLineClient,
                   body: bytes, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None or client.token:
        headers["Authorization"] = f"Bearer {token if token is not None else client.token}"
    async with http.post(platform.url + ACTIVITY_PATH.format(client.conversation), data=body,
                         headers=headers) as response:
        return response.status, await response.json()


# `words` are ours, or the field a decode error names (msgspec's sentence around it may change)
@pytest.mark.parametrize(("body", "status", "words"), [
    (b"{not json", 400, "not a valid activity"),
    (b'{"text": "no type"}', 400, "`type`"),
    (b'{"type": "message"}', 400, "needs 'text' or 'value'"),
    (b'{"type": "message", "text": 42}', 400, "`$.text`"),
    (b"[]", 400, "not a valid activity"),
])
async def test_malformed_activities_get_a_400_naming_the_problem(
        platform: Platform, http: aiohttp.ClientSession, client: DirectLineClient,
        body: bytes, status: int, words: str) -> None:
    code, answer = await post_raw(platform, http, client, body)
    assert code == status
    assert words in answer["error"]["message"]


async def test_oversized_body_is_refused_with_413(platform: Platform,
                                                  http: aiohttp.ClientSession,
                                                  client: DirectLineClient) -> None:
    body = b'{"type": "message", "text": "' + b"x" * 300_000 + b'"}'
    code, answer = await post_raw(platform, http, client, body)
    assert code == 413
    assert "error" in answer


async def test_missing_or_forged_credentials_are_refused(platform: Platform,
                                                         http: aiohttp.ClientSession,
                                                         client: DirectLineClient) -> None:
    good = b'{"type": "message", "text": "hi"}'
    assert (await post_raw(platform, http, client, good, token=""))[0] == 401
    forged = client.token[:-4] + ("AAAA" if not client.token.endswith("AAAA") else "BBBB")
    assert (await post_raw(platform, http, client, good, token=forged))[0] == 403


async def test_a_token_opens_only_its_own_conversation(platform: Platform,
                                                       http: aiohttp.ClientSession,
                                                       client: DirectLineClient) -> None:
    other = DirectLineClient(platform.url, http)
    await other.open("acme", "support", "webchat")
    client.conversation = other.conversation
    code, answer = await post_raw(platform, http, client, b'{"type":"message","text":"peek"}')
    assert code == 403
    assert "not valid for this conversation" in answer["error"]["message"]


async def test_anonymous_tokens_only_for_channels_that_allow_them(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    async with http.post(platform.url + "/webchat/api/token",
                         json={"tenant": "acme", "team": "support", "channel": "nope"}) as r:
        assert r.status == 403
    async with http.post(platform.url + "/webchat/api/token", data=b"garbage") as r:
        assert r.status == 400


async def test_the_channel_secret_opens_a_conversation(platform: Platform,
                                                       http: aiohttp.ClientSession) -> None:
    client = DirectLineClient(platform.url, http)
    await client.open("acme", "support", "webchat", secret="acme-secret")
    message_id = await client.post("by secret")
    replies = await client.replies_to(message_id, wait_s=15)
    assert [r.text for r in replies] == ["acme heard: by secret"]


async def test_the_service_still_answers_after_bad_requests(platform: Platform,
                                                            http: aiohttp.ClientSession,
                                                            client: DirectLineClient) -> None:
    for _ in range(3):
        await post_raw(platform, http, client, b"\xff\xfe garbage")
    message_id = await client.post("after the storm")
    replies = await client.replies_to(message_id, wait_s=15)
    assert [r.text for r in replies] == ["acme heard: after the storm"]

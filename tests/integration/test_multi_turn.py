"""A multi-turn flow (menu → sub-flow → form) through the five running services, with a second
conversation interleaved: each resumes its own paused flow and sees only its own answers."""

from pathlib import Path

import aiohttp

from greentic.providers.webchat.client import DirectLineClient
from tests.integration.platform import Platform
from tests.integration.provider_double import channel_platform

DEMO_PACK = str(Path(__file__).parents[2] / "examples" / "demo" / "pack")
platform = channel_platform("multi-turn", {"demo": {
    "provider": "webchat", "flow": "demo/main", "config": {"anonymous": True}}},
    {"demo": DEMO_PACK})


async def ask(client: DirectLineClient, text: str) -> list[str]:
    message_id = await client.post(text)
    return [r.text or "" for r in await client.replies_to(message_id, wait_s=20)]


async def test_two_interleaved_conversations_each_resume_their_own_flow(
        platform: Platform, http: aiohttp.ClientSession) -> None:
    ada, bob = DirectLineClient(platform.url, http), DirectLineClient(platform.url, http)
    await ada.open("acme", "support", "demo")
    await bob.open("acme", "support", "demo")
    assert (await ask(ada, "hi"))[0].endswith("What would you like to do?")
    assert (await ask(bob, "hello"))[0].endswith("What would you like to do?")
    assert await ask(ada, "Sign up") == ["Let's sign you up. What is your name?"]
    assert await ask(bob, "Ask a question") == ["Ask away — opening hours, prices or support?"]
    assert await ask(ada, "Ada") == ["Nice to meet you, Ada. How old are you?"]
    bob_answer = await ask(bob, "when are you open?")
    assert bob_answer[0] == "We are open Monday to Friday, 9:00 to 17:00."
    assert await ask(bob, "Sign up") == ["Let's sign you up. What is your name?"]
    assert await ask(bob, "Bob") == ["Nice to meet you, Bob. How old are you?"]
    assert await ask(ada, "not telling") == ["Please give your age as a number, e.g. 42."]
    assert await ask(ada, "36") == ["Which plan would you like?"]
    assert await ask(bob, "51") == ["Which plan would you like?"]
    assert await ask(bob, "Free") == ["Bob, 51 years, plan Free. Shall I register you?"]
    assert await ask(ada, "Team") == ["Ada, 36 years, plan Team. Shall I register you?"]
    assert await ask(ada, "Yes") == ["Done! Welcome aboard, Ada. Say anything to start again."]
    assert await ask(bob, "No") == ["Let's sign you up. What is your name?"]

"""The executor's session logic on the memory backend: exactly one applied turn per message,
paused flows resume, a lost CAS race is redone on fresh state, keys and settings are checked."""

import asyncio

import pytest

from greentic.bus.subjects import conversation_token, parse_message_subject, routed_subject
from greentic.config.settings import load_settings
from greentic.errors import ConfigError
from greentic.flow import FlowEngine, NodeOutcome, load_flow
from greentic.services.executor import TurnApplier
from greentic.session import MemoryRecords, RecordSessionStore, SessionKey, parse_session_key
from greentic.types import Envelope, FlowRef, TenantCtx

CTX = TenantCtx("dev", "acme", "support")
KEY = SessionKey(CTX, "webchat", "c1")

ASK_NAME = """
id: ask
type: messaging
start: ask
nodes:
  ask:
    test.wait: {text: "What is your name? (turn {{session.turn}})"}
    routing: [{to: greet}]
  greet:
    templating.handlebars: {text: "Hello {{in.input.text}} (turn {{session.turn}})"}
    routing: reply
"""


async def _wait(_node, rendered, _turn) -> NodeOutcome:
    return NodeOutcome(rendered, wait=True)


def message(n: int, text: str = "hi") -> Envelope:
    return Envelope(id=f"m{n}", ctx=CTX, channel="webchat", provider="webchat",
                    conversation="c1", text=text, flow=FlowRef("p", "ask"))


@pytest.fixture
def applier() -> TurnApplier:
    engine = FlowEngine()
    engine.operations["test.wait"] = _wait
    return TurnApplier(engine, RecordSessionStore(MemoryRecords()), epoch="e1")


async def turn(applier: TurnApplier, n: int, text: str = "hi") -> list[str]:
    prepared = applier.engine.prepare(load_flow(ASK_NAME, "ask.ygtc"), "p")
    return [r.text for r in await applier.apply(KEY, prepared, message(n, text), n)]


async def test_a_paused_flow_resumes_at_its_node_on_the_next_message(
        applier: TurnApplier) -> None:
    assert await turn(applier, 1) == ["What is your name? (turn 1)"]
    assert await turn(applier, 2, "Ada") == ["Hello Ada (turn 2)"]
    assert await turn(applier, 3) == ["What is your name? (turn 3)"]
    session = (await applier.sessions.get(KEY))[0]  # type: ignore[index]
    assert session.turns == 3 and session.snapshot is not None
    assert session.snapshot["node"] == "greet" and session.applied == ["m1", "m2", "m3"]


async def test_a_redelivered_message_is_not_applied_again_but_its_replies_come_back(
        applier: TurnApplier) -> None:
    first = await turn(applier, 1)
    assert await turn(applier, 1) == first  # redelivery of the last turn: same replies
    await turn(applier, 2, "Ada")
    assert await turn(applier, 1) == []  # an older turn: its replies went out before its ack
    assert (await applier.sessions.get(KEY))[0].turns == 2  # type: ignore[index]
    assert applier.redeliveries == 2


async def test_a_message_at_or_below_the_applied_stream_sequence_counts_as_applied(
        applier: TurnApplier) -> None:
    await turn(applier, 5)
    prepared = applier.engine.prepare(load_flow(ASK_NAME, "ask.ygtc"), "p")
    # an id no longer remembered, but a stream sequence already passed: applied before
    assert await applier.apply(KEY, prepared, message(99), 4) == []
    assert (await applier.sessions.get(KEY))[0].turns == 1  # type: ignore[index]


async def test_racing_turns_of_one_conversation_are_each_applied_once(
        applier: TurnApplier) -> None:
    await asyncio.gather(*(turn(applier, n) for n in range(1, 11)))
    session = (await applier.sessions.get(KEY))[0]  # type: ignore[index]
    assert session.turns == 10 and sorted(session.applied) == sorted(f"m{n}" for n in range(1, 11))


def test_session_keys_round_trip_and_refuse_bad_tokens() -> None:
    assert KEY.path() == "dev.acme.support.webchat.c1"
    assert parse_session_key(KEY.path()) == KEY
    with pytest.raises(Exception, match="expected"):
        parse_session_key("dev.acme.support.webchat")


def test_any_conversation_id_becomes_one_stable_token() -> None:
    assert conversation_token("abc-123") == "abc-123"
    odd = conversation_token("19:meeting@thread.v2;messageid=1")
    assert odd.startswith("h-") and odd == conversation_token("19:meeting@thread.v2;messageid=1")
    subject = routed_subject(CTX, "webchat", odd, 16)
    assert parse_message_subject(subject).conversation == odd


@pytest.mark.parametrize(("environ", "named"), [
    ({"GREENTIC_SESSION_BACKEND": "etcd"}, "GREENTIC_SESSION_BACKEND"),
    ({"GREENTIC_SESSION_BACKEND": "redis"}, "GREENTIC_REDIS_URL"),
    ({"GREENTIC_SESSION_BACKEND": "redis", "GREENTIC_REDIS_URL": "localhost:6379"},
     "GREENTIC_REDIS_URL"),
    ({"GREENTIC_SESSION_BACKEND": "memory", "GREENTIC_EXECUTOR_REPLICAS": "2"},
     "GREENTIC_SESSION_BACKEND=memory"),
    ({"GREENTIC_SESSION_TTL_S": "0"}, "GREENTIC_SESSION_TTL_S"),
])
def test_a_misconfigured_session_backend_fails_naming_the_variable(
        environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_memory_sessions_are_fine_for_one_executor() -> None:
    settings = load_settings({"GREENTIC_SESSION_BACKEND": "memory"})
    assert settings.session_backend == "memory" and settings.executor_replicas == 1

"""Fuzzing what arrives from outside: envelopes on the bus, WebChat activities, and every
provider's webhook body. Whatever the bytes, the answer is a value or the decoder's typed error
(EnvelopeError/DeadLetter, msgspec.DecodeError → 400, HTTPBadRequest), and whatever ingress
accepts, the next hop can read.
"""

from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greentic.bus.subjects import message_subject
from greentic.errors import DeadLetter, EnvelopeError
from greentic.hosting.hop import read_envelope
from greentic.providers import slack, teams, telegram, whatsapp
from greentic.providers.channel import ChannelInstance
from greentic.providers.webchat.activity import (
    decode_activity,
    encode_activity,
    envelope_from_activity,
    user_echo,
)
from greentic.providers.webhooks import InboundEvent, event_envelope
from greentic.types.envelope import Envelope, decode_envelope, encode_envelope
from greentic.types.tenant import TenantCtx
from tests.mutation import MUTATIONS, mutate

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CTX = TenantCtx("dev", "acme", "support")
JSON_LEAVES = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
JSON = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)


def mutated(sample: Any) -> st.SearchStrategy[bytes]:
    """JSON bodies near `sample` (one change anywhere), plus arbitrary JSON and bytes."""
    near = st.builds(mutate, st.just(sample), st.lists(st.integers(0, 9), max_size=6),
                     MUTATIONS, JSON)
    return (near.map(msgspec.json.encode) | JSON.map(msgspec.json.encode)
            | st.binary(max_size=200))


def next_hop_reads(envelope: Envelope) -> None:
    """What ingress publishes decodes on the next hop, on its own subject."""
    data = encode_envelope(envelope)
    subject = message_subject("ingress", envelope.ctx, envelope.channel)
    assert read_envelope(subject, data) == decode_envelope(data)


# --- envelopes -------------------------------------------------------------------------------

ENVELOPE = msgspec.to_builtins(Envelope(
    id="m1", ctx=CTX, channel="web", provider="webchat", conversation="c1", sender="u",
    text="hi", value={"k": [1, 2]},
    reply_to="m0", thread="t", created_ms=1, raw={"a": 1}))


class TestEnvelopeDecoder:
    @FUZZ
    @given(data=mutated(ENVELOPE))
    def test_any_bytes_decode_or_raise_envelope_error(self, data: bytes) -> None:
        try:
            envelope = decode_envelope(data)
        except EnvelopeError:
            return
        assert decode_envelope(encode_envelope(envelope)) == envelope

    @FUZZ
    @given(data=mutated(ENVELOPE),
           subject=st.sampled_from(["greentic.messaging.ingress.dev.acme.support.web",
                                    "greentic.messaging.routed.dev.acme.support.web.c1",
                                    "greentic.messaging.ingress.dev.globex.support.web",
                                    "greentic.messaging.ingress.dev.acme.support"]))
    def test_a_hop_reads_an_envelope_or_dead_letters_it(self, data: bytes, subject: str) -> None:
        try:
            envelope = read_envelope(subject, data)
        except DeadLetter:
            return
        assert envelope.ctx == CTX and ".acme." in subject


# --- WebChat ---------------------------------------------------------------------------------

ACTIVITY = {"type": "message", "text": "hi", "from": {"id": "u1", "name": "Ann"},
            "value": {"choice": "a"}, "channelData": {"clientActivityID": "x1"},
            "suggestedActions": {"actions": [{"type": "imBack", "title": "A", "value": "a"}]},
            "attachments": [{"contentType": "text/plain"}], "locale": "en"}


class TestWebChatActivities:
    @FUZZ
    @given(data=mutated(ACTIVITY))
    def test_a_posted_body_is_an_activity_or_a_decode_error_and_its_envelope_is_readable(
            self, data: bytes) -> None:
        try:
            activity = decode_activity(data)
        except msgspec.DecodeError:  # post_activity answers 400 BadArgument
            return
        if activity.type != "message" or not (activity.text or activity.value):
            return
        envelope = envelope_from_activity(activity, message_id="m1", ctx=CTX, channel="web",
                                          conversation="c1")
        next_hop_reads(envelope)
        assert decode_activity(encode_activity(user_echo(activity, envelope))).id == "m1"


# --- provider webhooks -----------------------------------------------------------------------

TELEGRAM = {"update_id": 7, "message": {"message_id": 7, "chat": {"id": 42, "type": "private"},
                                        "from": {"id": 9}, "text": "hi"},
            "callback_query": {"id": "q", "from": {"id": 9}, "data": "yes",
                               "message": {"chat": {"id": 42}}}}
SLACK_EVENT = {"type": "event_callback", "event_id": "Ev1", "event": {
    "type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.2",
    "thread_ts": "1.1"}}
SLACK_ACTION = {"type": "block_actions", "trigger_id": "t1", "user": {"id": "U1"},
                "channel": {"id": "C1"}, "container": {"message_ts": "1.2"},
                "actions": [{"value": "yes", "action_ts": "1.3"}]}
WHATSAPP = {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{
    "field": "messages", "value": {"messages": [
        {"from": "491", "id": "w1", "type": "text", "text": {"body": "hi"}},
        {"from": "491", "id": "w2", "type": "interactive",
         "interactive": {"button_reply": {"id": "b", "title": "B"}}},
        {"from": "491", "id": "w3", "type": "button",
         "button": {"text": "T", "payload": "p"}}]}}]}]}
TEAMS = {"type": "message", "id": "a1", "serviceUrl": "https://smba.trafficmanager.net/x/",
         "conversation": {"id": "19:c"}, "from": {"id": "29:u"}, "text": "",
         "value": {"choice": "b"}}


def channel(provider: str) -> ChannelInstance:
    return ChannelInstance(CTX, provider, provider, {})


def parsed_or_bad_request(provider: str, parse: Any, data: bytes) -> None:
    """`parse(data)` gives events whose envelopes the next hop reads, or HTTPBadRequest."""
    try:
        events = parse(data)
    except web.HTTPBadRequest:
        return
    for event in events:
        assert isinstance(event, InboundEvent)
        next_hop_reads(event_envelope(channel(provider), event))


def slack_form(data: bytes) -> list[InboundEvent]:
    from urllib.parse import urlencode
    return slack.parse_body(urlencode({"payload": data.decode("utf-8", "replace")}).encode(),
                            "application/x-www-form-urlencoded")[1]


class TestProviderWebhooks:
    @FUZZ
    @given(data=mutated(TELEGRAM))
    def test_telegram(self, data: bytes) -> None:
        parsed_or_bad_request("telegram", telegram.parse_body, data)

    @FUZZ
    @given(data=mutated(SLACK_EVENT))
    def test_slack_events(self, data: bytes) -> None:
        parsed_or_bad_request("slack", lambda d: slack.parse_body(d, "application/json")[1],
                              data)

    @FUZZ
    @given(data=mutated(SLACK_ACTION))
    def test_slack_interactions(self, data: bytes) -> None:
        parsed_or_bad_request("slack", slack_form, data)
        parsed_or_bad_request("slack", lambda d: slack.parse_body(
            d, "application/x-www-form-urlencoded")[1], data)

    @FUZZ
    @given(data=mutated(WHATSAPP))
    def test_whatsapp(self, data: bytes) -> None:
        parsed_or_bad_request("whatsapp", whatsapp.parse_body, data)

    @FUZZ
    @given(data=mutated(TEAMS))
    def test_teams(self, data: bytes) -> None:
        parsed_or_bad_request("teams", lambda d: teams.parse_body(d)[1], data)


@pytest.mark.parametrize(("provider", "parse", "sample", "count"), [
    ("telegram", telegram.parse_body, TELEGRAM, 1),
    ("slack", lambda d: slack.parse_body(d, "application/json")[1], SLACK_EVENT, 1),
    ("slack", slack_form, SLACK_ACTION, 1),
    ("whatsapp", whatsapp.parse_body, WHATSAPP, 3),
    ("teams", lambda d: teams.parse_body(d)[1], TEAMS, 1)])
def test_the_samples_the_fuzzers_start_from_parse(provider, parse, sample, count) -> None:
    """Else the properties above would only ever see refusals."""
    assert len(parse(msgspec.json.encode(sample))) == count


@pytest.mark.parametrize(("parse", "body"), [
    (telegram.parse_body, {"update_id": 1, "message": {"chat": {"id": 1}, "from": "9"}}),
    (telegram.parse_body, {"update_id": 1, "callback_query": {"message": "m"}}),
    (telegram.parse_body, {"update_id": 1, "callback_query": {"message": {"chat": {}},
                                                              "from": 9}}),
    (slack_form, {"type": "block_actions", "channel": "C1", "actions": [{}]}),
    (slack_form, {"type": "block_actions", "channel": {"id": "C"}, "actions": {"0": 1}}),
    (slack_form, {"type": "block_actions", "channel": {"id": "C"}, "actions": ["v"],
                  "user": "U", "container": "x"}),
    (whatsapp.parse_body, {"entry": [{"changes": 5}]}),
    (whatsapp.parse_body, {"entry": [{"changes": [{"value": "v"}]}]}),
    (whatsapp.parse_body, {"entry": [{"changes": [{"value": {"messages": [
        {"from": "1", "type": "text", "text": "hi"}, {"from": "1", "interactive": "x"},
        {"from": "1", "type": "button", "button": "b"}]}}]}]}),
    (lambda d: teams.parse_body(d)[1], {"type": "message", "conversation": {}, "from": "u"}),
], ids=lambda v: "" if callable(v) else str(v)[:40])
def test_fields_of_the_wrong_json_type_are_ignored_not_a_crash(parse, body) -> None:
    """Found by the fuzzers above: these raised AttributeError/TypeError/KeyError (an HTTP
    500, so the provider retried the same body forever)."""
    parse(msgspec.json.encode(body))


def test_a_non_text_slack_thread_becomes_text_the_next_hop_reads() -> None:
    """Found by the fuzzers: `"ts": 1.5` made an envelope the router dead-lettered."""
    body = {**SLACK_EVENT, "event": {**SLACK_EVENT["event"], "ts": 1.5, "thread_ts": None}}
    [event] = slack.parse_body(msgspec.json.encode(body), "application/json")[1]
    assert event.thread == "1.5"
    next_hop_reads(event_envelope(channel("slack"), event))

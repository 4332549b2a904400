"""Direct Line tokens and the activity ↔ envelope mapping."""

import time

import msgspec
import pytest

from greentic.providers.webchat.activity import (
    activity_id,
    bot_activity,
    decode_activity,
    envelope_from_activity,
)
from greentic.providers.webchat.tokens import (
    TokenClaims,
    TokenError,
    issue_token,
    new_claims,
    verify_token,
)
from greentic.types import Button, Envelope, TenantCtx

KEY = b"k" * 32
CTX = TenantCtx("dev", "acme", "support")


def test_a_token_round_trips_its_claims() -> None:
    claims = new_claims("acme", "support", "webchat", "conv1")
    assert verify_token(KEY, issue_token(KEY, claims)) == claims


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "x" + t,
    lambda t: t.replace(".", ""),
    lambda t: "",
    lambda t: t.split(".")[0] + ".\x80",       # non-ASCII signature (was a TypeError)
    lambda t: t.split(".")[0] + ".\udcff",     # an undecodable header byte
])
def test_forged_tokens_are_refused(mangle) -> None:
    with pytest.raises(TokenError):
        verify_token(KEY, mangle(issue_token(KEY, new_claims("a", "b", "c", None))))


def test_a_token_from_another_key_or_expired_is_refused() -> None:
    with pytest.raises(TokenError, match="signature"):
        verify_token(b"other", issue_token(KEY, new_claims("a", "b", "c", None)))
    expired = TokenClaims("a", "b", "c", exp=int(time.time()) - 1)
    with pytest.raises(TokenError, match="expired"):
        verify_token(KEY, issue_token(KEY, expired))


def test_a_posted_activity_becomes_an_envelope_and_a_clicked_button_its_text() -> None:
    activity = decode_activity(b'{"type":"message","value":"Yes","from":{"id":"u9"}}')
    envelope = envelope_from_activity(activity, message_id="m1", ctx=CTX, channel="webchat",
                                      conversation="c1")
    assert (envelope.text, envelope.sender, envelope.provider) == ("Yes", "u9", "webchat")
    assert envelope.raw == {"type": "message", "value": "Yes", "from": {"id": "u9"}}


def test_a_retried_post_keeps_its_id_when_the_client_names_its_activity() -> None:
    first = decode_activity(b'{"type":"message","text":"a","channelData":'
                            b'{"clientActivityID":"x1"}}')
    assert activity_id("c1", first) == activity_id("c1", first) != activity_id("c2", first)
    anonymous = decode_activity(b'{"type":"message","text":"a"}')
    assert activity_id("c1", anonymous) != activity_id("c1", anonymous)


def test_a_reply_becomes_a_bot_activity_with_suggested_actions() -> None:
    reply = Envelope(id="m1-0", ctx=CTX, channel="webchat", provider="webchat",
                     conversation="c1", direction="out", text="Pick", reply_to="m1",
                     buttons=[Button("Yes", "y")], created_ms=1_700_000_000_000)
    wire = msgspec.json.decode(msgspec.json.encode(bot_activity(reply)))
    assert wire == {
        "type": "message", "id": "m1-0", "timestamp": "2023-11-14T22:13:20.000+00:00",
        "from": {"id": "bot", "name": "Greentic", "role": "bot"}, "conversation": {"id": "c1"},
        "text": "Pick", "replyToId": "m1", "channelId": "webchat",
        "suggestedActions": {"actions": [{"type": "imBack", "title": "Yes", "value": "y"}]},
    }

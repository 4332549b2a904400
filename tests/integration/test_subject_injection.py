"""Conversation ids and channel names with `.`, `*`, `>`, spaces or unicode, sent to the real
ingress: refused with a clear 4xx, or published to exactly the expected subject — never another
subject, never a wildcard."""

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greentic.bus.subjects import conversation_token
from greentic.bus.topology import HOPS, WEBCHAT_STREAM
from greentic.types.envelope import decode_envelope
from tests.integration.inprocess import InProcessIngress

SECRET, TELEGRAM_SECRET = "injection-webchat-secret", "injection-telegram-secret"
BUNDLE = {
    "packs": {"p": {"path": "packs/p"}},
    "tenants": {"acme": {"packs": ["p"], "teams": {"support": {"channels": {
        "webchat": {"provider": "webchat", "flow": "p/f", "config": {"secret": SECRET}},
        "telegram": {"provider": "telegram", "flow": "p/f",
                     "config": {"secret_token": TELEGRAM_SECRET, "bot_token": "1:x"}},
    }}}}},
}
SAFE = re.compile(r"[A-Za-z0-9_\-]{1,128}")
HOSTILE = st.text(max_size=30) | st.sampled_from(
    ["a.b", "*", ">", "a b", "acme.>", "acme.*.webchat", "ä", "\u00a0", "x" * 129, "..", "c1"])
CHECKS = settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessIngress]:
    running = InProcessIngress(Path(tmp_path_factory.mktemp("injection")), BUNDLE).start()
    yield running
    running.stop()


def request(port: int, method: str, path: str, headers: dict[str, str],
            body: bytes = b"") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def published_since(ingress: InProcessIngress, stream: str, after: int) -> list:
    """Messages stored in `stream` after sequence `after`, and that sequence now."""
    async def read() -> list:
        assert ingress.nc is not None
        js = ingress.nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        return [await js.get_msg(stream, seq) for seq in range(after + 1, last + 1)]

    return ingress.call(read)


def last_seq(ingress: InProcessIngress, stream: str) -> int:
    async def read() -> int:
        assert ingress.nc is not None
        return (await ingress.nc.jetstream().stream_info(stream)).state.last_seq

    return ingress.call(read)


@CHECKS
@given(chat_id=HOSTILE, update_id=st.integers(0, 2**40))
def test_a_telegram_chat_id_never_changes_the_subject(ingress: InProcessIngress, chat_id: str,
                                                      update_id: int) -> None:
    before = last_seq(ingress, HOPS["ingress"].stream)
    body = json.dumps({"update_id": update_id, "message": {
        "message_id": 1, "chat": {"id": chat_id}, "from": {"id": chat_id}, "text": chat_id}})
    status = request(ingress.http_port, "POST", "/webhooks/acme/support/telegram",
                     {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}, body.encode())
    assert status == 200
    new = published_since(ingress, HOPS["ingress"].stream, before)
    if not new:  # the same update_id again: deduplicated by JetStream
        return
    [message] = new
    assert message.subject == "greentic.messaging.ingress.dev.acme.support.telegram"
    envelope = decode_envelope(message.data)
    assert envelope.conversation == conversation_token(chat_id)
    assert message.headers["Greentic-Conversation"] == envelope.conversation
    assert envelope.reply_target == chat_id, "the provider still gets its own id back"


@CHECKS
@given(cid=HOSTILE)
def test_a_direct_line_conversation_id_is_refused_or_used_as_exactly_one_token(
        ingress: InProcessIngress, cid: str) -> None:
    ingress_before = last_seq(ingress, HOPS["ingress"].stream)
    webchat_before = last_seq(ingress, WEBCHAT_STREAM)
    status = request(ingress.http_port, "POST",
                     f"/v3/directline/conversations/{quote(cid, safe='')}/activities",
                     {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
                     b'{"type": "message", "text": "hi"}')
    published = published_since(ingress, HOPS["ingress"].stream, ingress_before)
    transcript = published_since(ingress, WEBCHAT_STREAM, webchat_before)
    if not SAFE.fullmatch(cid):
        assert status in (400, 404, 405), status
        assert published == [] and transcript == []
        return
    assert status == 200
    [message] = published
    assert message.subject == "greentic.messaging.ingress.dev.acme.support.webchat"
    assert decode_envelope(message.data).conversation == cid
    assert [m.subject for m in transcript] == \
        [f"greentic.webchat.activity.dev.acme.support.webchat.{cid}"]


@CHECKS
@given(tenant=HOSTILE, team=HOSTILE, channel=HOSTILE)
def test_a_webhook_path_names_a_configured_channel_or_nothing(
        ingress: InProcessIngress, tenant: str, team: str, channel: str) -> None:
    before = last_seq(ingress, HOPS["ingress"].stream)
    path = "/webhooks/" + "/".join(quote(p, safe="") for p in (tenant, team, channel))
    status = request(ingress.http_port, "POST", path,
                     {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                     msgspec.json.encode({"update_id": 7, "message": {"chat": {"id": 1}}}))
    published = published_since(ingress, HOPS["ingress"].stream, before)
    if (tenant, team, channel) == ("acme", "support", "telegram"):
        assert status == 200
        return
    assert status in (404, 405)
    assert published == []

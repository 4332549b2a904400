"""Subjects are built in one place and no user input can change which subject is used."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greentic.bus.subjects import (
    conversation_token,
    deadletter_subject,
    message_subject,
    parse_message_subject,
    partition_filter,
    partition_of,
    routed_subject,
    tenant_filters,
    validate_token,
    webchat_activity_subject,
)
from greentic.errors import SubjectError
from greentic.session.model import SessionKey, parse_session_key
from greentic.types import TenantCtx

CTX = TenantCtx("dev", "acme", "support")


def test_the_seed_subject_families_are_built_as_documented() -> None:
    assert message_subject("ingress", CTX, "webchat") == \
        "greentic.messaging.ingress.dev.acme.support.webchat"
    assert message_subject("egress", CTX, "slack-1") == \
        "greentic.messaging.egress.dev.acme.support.slack-1"
    routed = routed_subject(CTX, "webchat", "c1", 16)
    assert routed.startswith("greentic.messaging.routed.dev.acme.support.webchat.c1.")
    assert 0 <= int(routed.rsplit(".", 1)[1]) < 16
    assert deadletter_subject("routed") == "greentic.messaging.deadletter.routed"
    assert webchat_activity_subject(CTX, "webchat", "c_1-x") == \
        "greentic.webchat.activity.dev.acme.support.webchat.c_1-x"


def test_parse_inverts_build() -> None:
    parsed = parse_message_subject(message_subject("egress", CTX, "webchat"))
    assert (parsed.stage, parsed.ctx, parsed.channel) == ("egress", CTX, "webchat")
    parsed = parse_message_subject(routed_subject(CTX, "webchat", "c1", 16))
    assert (parsed.stage, parsed.ctx, parsed.channel, parsed.conversation, parsed.partition) == \
        ("routed", CTX, "webchat", "c1", partition_of(CTX, "webchat", "c1", 16))


def test_a_conversation_always_hashes_to_the_same_partition_and_all_partitions_get_some() -> None:
    assert partition_of(CTX, "webchat", "c1", 16) == partition_of(CTX, "webchat", "c1", 16)
    assert partition_of(CTX, "webchat", "c1", 16) != partition_of(CTX, "webchat", "c1", 17) or \
        partition_of(CTX, "webchat", "c2", 16) != partition_of(CTX, "webchat", "c2", 17)
    used = {partition_of(CTX, "webchat", f"c{n}", 16) for n in range(400)}
    assert used == set(range(16))
    other_tenant = TenantCtx("dev", "globex", "support")
    assert [partition_of(CTX, "webchat", f"c{n}", 16) for n in range(20)] != \
        [partition_of(other_tenant, "webchat", f"c{n}", 16) for n in range(20)]


def test_a_partition_filter_matches_its_partitions_subjects_only() -> None:
    subject = routed_subject(CTX, "webchat", "c1", 16)
    partition = int(subject.rsplit(".", 1)[1])
    pattern = partition_filter(partition).replace(".", r"\.").replace("*", "[^.]+")
    assert re.fullmatch(pattern, subject)
    assert not re.fullmatch(partition_filter((partition + 1) % 16).replace(".", r"\.")
                            .replace("*", "[^.]+"), subject)


@pytest.mark.parametrize("bad", ["", "a.b", "*", ">", "a b", "tab\t", "new\nline", "ä", "a" * 129])
def test_unsafe_tokens_are_rejected_with_the_field_named(bad: str) -> None:
    with pytest.raises(SubjectError, match=r"^tenant "):
        validate_token("tenant", bad)
    with pytest.raises(SubjectError):
        message_subject("ingress", TenantCtx("dev", bad, "team"), "webchat")
    with pytest.raises(SubjectError):
        webchat_activity_subject(CTX, "webchat", bad)


@pytest.mark.parametrize("subject", [
    "greentic.messaging.ingress.dev.acme.support",
    "greentic.messaging.other.dev.acme.support.webchat",
    "greentic.messaging.ingress.dev.acme.support.webchat.extra",
    "other.messaging.ingress.dev.acme.support.webchat",
    "greentic.messaging.ingress.dev.*.support.webchat",
    "greentic.messaging.routed.dev.acme.support.webchat.c1",
    "greentic.messaging.routed.dev.acme.support.webchat.c1.x",
    "greentic.messaging.routed.dev.acme.support.webchat.c1.3.4",
])
def test_parse_rejects_anything_but_a_message_subject(subject: str) -> None:
    with pytest.raises(SubjectError):
        parse_message_subject(subject)


# --- subject injection: properties over any text -------------------------------------------
# A value either is refused with SubjectError naming its field, or becomes exactly one token
# of exactly the expected subject; never a wildcard, never another tenant's subject.
HOSTILE = st.text(max_size=40) | st.sampled_from(["a.b", "*", ">", "a b", "acme.>", "acme.*.x",
                                                  "ä", "\u00a0", "a\tb", "a\nb", ".", "",
                                                  "x" * 129])
FIELDS = ("env", "tenant", "team", "channel", "conversation")
SAFE = re.compile(r"[A-Za-z0-9_\-]{1,128}")


@settings(max_examples=300)
@given(field=st.sampled_from(FIELDS), value=HOSTILE, stage=st.sampled_from(["ingress", "routed",
                                                                           "egress"]))
def test_a_value_is_refused_or_is_exactly_one_token_of_the_expected_subject(
        field: str, value: str, stage: str) -> None:
    parts = {"env": "dev", "tenant": "acme", "team": "support", "channel": "webchat",
             "conversation": "c1", field: value}
    ctx = TenantCtx(parts["env"], parts["tenant"], parts["team"])
    conversation = parts["conversation"] if stage == "routed" else None

    def build() -> str:
        if stage == "routed":
            return routed_subject(ctx, parts["channel"], parts["conversation"], 16)
        return message_subject(stage, ctx, parts["channel"])  # type: ignore[arg-type]

    if not SAFE.fullmatch(value):
        if field != "conversation" or stage == "routed":
            with pytest.raises(SubjectError, match=rf"^{field} "):
                build()
        with pytest.raises(SubjectError, match=rf"^{field} "):
            webchat_activity_subject(ctx, parts["channel"], parts["conversation"])
        return
    subject = build()
    tokens = subject.split(".")
    expected = ["greentic", "messaging", stage, parts["env"], parts["tenant"], parts["team"],
                parts["channel"]] + ([conversation, str(partition_of(
                    ctx, parts["channel"], conversation, 16))] if conversation else [])
    assert tokens == expected
    assert "*" not in tokens and ">" not in tokens
    parsed = parse_message_subject(subject)
    assert (parsed.ctx, parsed.channel, parsed.conversation) == (ctx, parts["channel"],
                                                                 conversation)
    assert webchat_activity_subject(ctx, parts["channel"], parts["conversation"]).split(".")[3:] \
        == [parts[f] for f in FIELDS]


@settings(max_examples=300)
@given(conversation=HOSTILE | st.text(min_size=100, max_size=300))
def test_any_provider_conversation_id_becomes_one_safe_token(conversation: str) -> None:
    token = conversation_token(conversation)
    assert SAFE.fullmatch(token)
    if SAFE.fullmatch(conversation):
        assert token == conversation
    else:
        assert re.fullmatch(r"h-[0-9a-f]{32}", token)
    assert validate_token("conversation", token) == token
    assert conversation_token(conversation) == token, "stable"


@given(a=HOSTILE, b=HOSTILE)
def test_distinct_conversation_ids_get_distinct_tokens(a: str, b: str) -> None:
    if a != b:
        assert conversation_token(a) != conversation_token(b)


@settings(max_examples=200)
@given(env=HOSTILE, tenant=HOSTILE)
def test_a_tenant_tap_filter_covers_that_tenant_only(env: str, tenant: str) -> None:
    if not (SAFE.fullmatch(env) and SAFE.fullmatch(tenant)):
        with pytest.raises(SubjectError):
            tenant_filters(env, tenant)
        return
    assert tenant_filters(env, tenant) == [f"greentic.messaging.{stage}.{env}.{tenant}.>"
                                           for stage in ("ingress", "routed", "egress")]


@settings(max_examples=200)
@given(field=st.sampled_from(FIELDS), value=HOSTILE)
def test_a_session_key_is_refused_or_exactly_five_tokens(field: str, value: str) -> None:
    parts = {"env": "dev", "tenant": "acme", "team": "support", "channel": "webchat",
             "conversation": "c1", field: value}
    key = SessionKey(TenantCtx(parts["env"], parts["tenant"], parts["team"]), parts["channel"],
                     parts["conversation"])
    if not SAFE.fullmatch(value):
        with pytest.raises(SubjectError, match=rf"^{field} "):
            key.path()
        return
    assert key.path().split(".") == [parts[f] for f in FIELDS]
    assert parse_session_key(key.path()) == key

"""Subjects are built in one place and no user input can change which subject is used."""

import pytest

from greentic.bus.subjects import (
    deadletter_subject,
    message_subject,
    parse_message_subject,
    validate_token,
    webchat_activity_subject,
)
from greentic.errors import SubjectError
from greentic.types import TenantCtx

CTX = TenantCtx("dev", "acme", "support")


def test_the_seed_subject_families_are_built_as_documented() -> None:
    assert message_subject("ingress", CTX, "webchat") == \
        "greentic.messaging.ingress.dev.acme.support.webchat"
    assert message_subject("egress", CTX, "slack-1") == \
        "greentic.messaging.egress.dev.acme.support.slack-1"
    assert message_subject("routed", CTX, "webchat").startswith("greentic.messaging.routed.")
    assert deadletter_subject("routed") == "greentic.messaging.deadletter.routed"
    assert webchat_activity_subject(CTX, "webchat", "c_1-x") == \
        "greentic.webchat.activity.dev.acme.support.webchat.c_1-x"


def test_parse_inverts_build() -> None:
    parsed = parse_message_subject(message_subject("routed", CTX, "webchat"))
    assert (parsed.stage, parsed.ctx, parsed.channel) == ("routed", CTX, "webchat")


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
])
def test_parse_rejects_anything_but_a_message_subject(subject: str) -> None:
    with pytest.raises(SubjectError):
        parse_message_subject(subject)

"""GREENTIC_ADMIN_TOKENS: the format, the scopes, and errors that never show a token."""

import pytest

from greentic.admin.tokens import AdminScope, parse_admin_tokens
from greentic.config.settings import load_settings
from greentic.errors import ConfigError
from greentic.services.ingress import IngressService

ALL = "all-tenants-token-0123456789"
ACME = "acme-only-token-0123456789"


def test_a_bare_token_reaches_every_tenant_and_a_prefixed_one_only_its_tenant() -> None:
    tokens = parse_admin_tokens(f" {ALL} ,acme:{ACME},")
    assert tokens.scope_of(ALL) == AdminScope(None)
    assert tokens.scope_of(ACME) == AdminScope("acme")
    assert tokens.scope_of(ACME).allows("acme") and not tokens.scope_of(ACME).allows("globex")
    assert tokens.scope_of(ALL).allows("globex")


@pytest.mark.parametrize("presented", ["", ALL[:-1], ALL + "x", f"acme:{ACME}", ALL.upper(),
                                       "\udcff" * 20])
def test_anything_but_a_configured_token_has_no_scope(presented: str) -> None:
    assert parse_admin_tokens(f"{ALL},acme:{ACME}").scope_of(presented) is None


def test_no_tokens_means_no_admin_api() -> None:
    assert not parse_admin_tokens("")
    assert not parse_admin_tokens(" , ")


@pytest.mark.parametrize(("text", "words"), [
    ("short", "entry 1: a token needs at least 16 characters"),
    (f"{ALL},:{ACME}", "entry 2 starts with ':'"),
    (f"ac.me:{ACME}", "entry 1: tenant 'ac.me' is not a valid subject token"),
    (f"*:{ACME}", "entry 1: tenant '*'"),
    (f"acme:{ACME[:8]}", "entry 1: a token needs at least 16"),
])
def test_malformed_entries_are_refused_naming_the_entry_not_the_token(text: str,
                                                                      words: str) -> None:
    with pytest.raises(ConfigError, match="GREENTIC_ADMIN_TOKENS") as caught:
        parse_admin_tokens(text)
    assert words in str(caught.value)
    assert ACME not in str(caught.value) and ACME[:8] not in str(caught.value)


def test_the_admin_api_may_not_share_the_public_port() -> None:
    settings = load_settings({"GREENTIC_ADMIN_TOKENS": ALL, "GREENTIC_HTTP_PORT": "9000",
                              "GREENTIC_ADMIN_PORT": "9000"})
    with pytest.raises(ConfigError, match="GREENTIC_ADMIN_PORT=9000: the admin API needs its own"):
        IngressService(settings, bundle=None)  # type: ignore[arg-type]

"""Admin bearer tokens (`GREENTIC_ADMIN_TOKENS`): each for all tenants or for one tenant.

Format: comma-separated entries, each `TOKEN` (every tenant) or `TENANT:TOKEN` (only that
tenant). A token is at least 16 characters and holds no `:`, `,` or whitespace, e.g.
`python -c 'import secrets; print(secrets.token_urlsafe(32))'`. Presented tokens are compared
in constant time against every configured token (no early exit, no length leak).
"""

import hashlib
import hmac
from typing import NamedTuple

from greentic.bus.subjects import validate_token
from greentic.errors import ConfigError, SubjectError

MIN_TOKEN_CHARS = 16
VARIABLE = "GREENTIC_ADMIN_TOKENS"


class AdminScope(NamedTuple):
    """What an authenticated admin caller may touch: one tenant, or all (None)."""

    tenant: str | None

    def allows(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant


class AdminTokens:
    """The configured tokens, as sha256 digests with their scope."""

    def __init__(self, entries: list[tuple[AdminScope, bytes]]) -> None:
        self._entries = entries

    def __bool__(self) -> bool:
        return bool(self._entries)

    def scope_of(self, presented: str) -> AdminScope | None:
        """The scope of a presented token, or None if it matches no configured token."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for scope, expected in self._entries:  # all compared, whichever matches
            if hmac.compare_digest(digest, expected):
                found = scope
        return found


def parse_admin_tokens(text: str) -> AdminTokens:
    """`GREENTIC_ADMIN_TOKENS` → tokens; ConfigError naming the entry's position (never the
    token itself) when one is malformed."""
    entries = []
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        tenant, colon, token = entry.rpartition(":")
        if colon and not tenant:
            raise ConfigError(f"{VARIABLE}: entry {position} starts with ':'; write TOKEN "
                              "(all tenants) or TENANT:TOKEN")
        if tenant:
            try:
                validate_token("tenant", tenant)
            except SubjectError as exc:
                raise ConfigError(f"{VARIABLE}: entry {position}: {exc}") from None
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise ConfigError(f"{VARIABLE}: entry {position}: a token needs at least "
                              f"{MIN_TOKEN_CHARS} characters and no whitespace")
        entries.append((AdminScope(tenant or None), hashlib.sha256(token.encode()).digest()))
    return AdminTokens(entries)

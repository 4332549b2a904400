"""Direct Line tokens: HMAC-signed claims naming the channel (and conversation) they open."""

import base64
import hashlib
import hmac
import time

import msgspec

from greentic.errors import GreenticError

TOKEN_TTL_S = 3600


class TokenError(GreenticError):
    """A token is malformed, forged or expired."""


class TokenClaims(msgspec.Struct, frozen=True, omit_defaults=True):
    tenant: str
    team: str
    channel: str
    exp: int
    conversation: str | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(TokenClaims).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(key: bytes, claims: TokenClaims) -> str:
    payload = _b64(_encode(claims))
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def new_claims(tenant: str, team: str, channel: str, conversation: str | None) -> TokenClaims:
    return TokenClaims(tenant=tenant, team=team, channel=channel, conversation=conversation,
                       exp=int(time.time()) + TOKEN_TTL_S)


def verify_token(key: bytes, token: str) -> TokenClaims:
    """The claims of a valid token; TokenError otherwise (compared in constant time)."""
    payload, dot, signature = token.partition(".")
    if not dot:
        raise TokenError("malformed token")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a "no")
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogateescape")):
        raise TokenError("token signature is invalid")
    try:
        claims = _decode(_unb64(payload))
    except (msgspec.DecodeError, ValueError):
        raise TokenError("malformed token") from None
    if claims.exp < time.time():
        raise TokenError("token expired")
    return claims

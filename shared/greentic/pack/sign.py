"""`signatures/pack.sig`: an Ed25519 signature over a digest of every other entry, and the
trust policy deciding whose signatures count."""

import base64
import binascii
import hashlib
from typing import Literal

import msgspec
import structlog
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey

from greentic.errors import PackError, PackSignatureError
from greentic.pack.keys import format_public_key, parse_public_key

log = structlog.get_logger(__name__)

SIGNATURE_ENTRY = "signatures/pack.sig"
DOMAIN = b"greentic-py gtpack signature v1\x00"
TrustPolicy = Literal["strict", "dev"]


class Trust(msgspec.Struct, frozen=True, kw_only=True):
    """Whose signatures a reader accepts."""

    keys: frozenset[str] = frozenset()
    """Trusted public keys, `ed25519:<base64>`."""
    policy: TrustPolicy = "strict"
    """`strict`: only `keys`. `dev`: any key whose signature verifies (logged as a warning)."""


class PackSignature(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    algorithm: Literal["ed25519"]
    public_key: str
    digest: str
    """`sha256:<hex>` of what was signed (see `signing_digest`)."""
    signature: str
    """base64 of the 64-byte Ed25519 signature over the 32 digest bytes."""


def signing_digest(entries: dict[str, bytes]) -> bytes:
    """sha256 over every entry but the signature: name, size and sha256 of each, sorted by name.

    This covers the manifest, the SBOM and every file, so no entry can change, appear or
    vanish without invalidating the signature."""
    digest = hashlib.sha256(DOMAIN)
    for name in sorted(entries):
        if name == SIGNATURE_ENTRY:
            continue
        encoded = name.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
        digest.update(len(entries[name]).to_bytes(8, "big"))
        digest.update(hashlib.sha256(entries[name]).digest())
    return digest.digest()


def make_signature(entries: dict[str, bytes], key: SigningKey) -> bytes:
    """The bytes of `signatures/pack.sig` for `entries` (deterministic: Ed25519 is)."""
    digest = signing_digest(entries)
    signed = key.sign(digest).signature
    return msgspec.json.encode(PackSignature(
        algorithm="ed25519", public_key=format_public_key(key.verify_key),
        digest="sha256:" + digest.hex(), signature=base64.b64encode(signed).decode())) + b"\n"


def verify_pack_signature(entries: dict[str, bytes], trust: Trust, *, pack: str = "") -> str:
    """The public key that signed `entries`; PackSignatureError when unsigned, forged, or
    signed by a key `trust` does not accept."""
    data = entries.get(SIGNATURE_ENTRY)
    if data is None:
        raise PackSignatureError("unsigned pack: sign it (`greentic pack sign PACK --key KEY`)",
                                 entry=SIGNATURE_ENTRY)
    try:
        signature = msgspec.json.decode(data, type=PackSignature)
        key = parse_public_key(signature.public_key)
        signed = base64.b64decode(signature.signature, validate=True)
    except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, PackError) as exc:
        raise PackSignatureError(f"unreadable signature: {exc}", entry=SIGNATURE_ENTRY) from None
    digest = signing_digest(entries)
    if signature.digest != "sha256:" + digest.hex():
        raise PackSignatureError("signed digest does not match the archive's entries (an "
                                 "entry was changed, added or removed after signing)",
                                 entry=SIGNATURE_ENTRY)
    try:
        key.verify(digest, signed)
    except (BadSignatureError, CryptoError, ValueError):
        raise PackSignatureError(f"signature does not verify with its key "
                                 f"{signature.public_key}", entry=SIGNATURE_ENTRY) from None
    public = format_public_key(key)
    if public not in trust.keys:
        if trust.policy != "dev":
            raise PackSignatureError(
                f"signed by {public}, which is not a trusted key (policy strict; trusted: "
                f"{sorted(trust.keys) or 'none configured'})", entry=SIGNATURE_ENTRY)
        log.warning("DEV TRUST POLICY: accepting a pack signed by an untrusted key; never use "
                    "policy 'dev' in production", pack=pack, key=public)
    return public

"""Ed25519 keys for signing packs (PyNaCl): private key files and `ed25519:<base64>` public keys."""

import base64
import binascii
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey

from greentic.errors import PackError

Key = TypeVar("Key", SigningKey, VerifyKey)

PUBLIC_PREFIX = "ed25519:"
PRIVATE_PREFIX = "ed25519-private:"


def format_public_key(key: VerifyKey) -> str:
    """`ed25519:<base64 of the 32 key bytes>`."""
    return PUBLIC_PREFIX + base64.b64encode(bytes(key)).decode()


def _key_bytes(encoded: str) -> bytes:
    """32 raw key bytes from base64; ValueError/binascii.Error say what is wrong."""
    raw = base64.b64decode(encoded, validate=True)
    if len(raw) != 32:
        raise ValueError(f"{len(raw)} bytes, not 32")
    return raw


def _decode_key(kind: Callable[[bytes], Key], text: str, prefix: str, *, refused: str,
                invalid: str) -> Key:
    """`kind` made from `<prefix><base64 of 32 bytes>`; PackError(refused) for another shape,
    PackError(invalid: why) for bytes that are no such key."""
    if not text.startswith(prefix):
        raise PackError(refused)
    try:
        return kind(_key_bytes(text[len(prefix):]))
    except (binascii.Error, ValueError, CryptoError) as exc:
        raise PackError(f"{invalid}: {exc}") from None


def parse_public_key(text: str) -> VerifyKey:
    """A public key from its `ed25519:<base64>` form; PackError says what is wrong."""
    text = text.strip()
    return _decode_key(VerifyKey, text, PUBLIC_PREFIX,
                       refused=f"public key {text[:20]!r}… must look like 'ed25519:<base64>'",
                       invalid=f"public key {text!r} is not an Ed25519 key")


def parse_trusted_keys(text: str) -> frozenset[str]:
    """Comma- or whitespace-separated `ed25519:` keys (each checked), normalised."""
    keys = [part for part in text.replace(",", " ").split() if part]
    return frozenset(format_public_key(parse_public_key(key)) for key in keys)


def write_keypair(stem: str | Path) -> tuple[Path, Path, SigningKey]:
    """Write `<stem>.key` (mode 0600, never over an existing file) and `<stem>.pub`."""
    private, public = Path(f"{stem}.key"), Path(f"{stem}.pub")
    key = SigningKey.generate()
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise PackError(f"{private} exists; refusing to overwrite a private key") from None
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)  # whatever the umask
        file.write(PRIVATE_PREFIX + base64.b64encode(bytes(key)).decode() + "\n")
    public.write_text(format_public_key(key.verify_key) + "\n")
    return private, public, key


def read_signing_key(path: str | Path) -> SigningKey:
    """A private key file written by `write_keypair`; refused if others may read it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PackError(f"cannot read private key {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PackError(f"private key {path} is readable by others (mode "
                        f"{stat.S_IMODE(mode):04o}); run: chmod 600 {path}")
    return _decode_key(SigningKey, text, PRIVATE_PREFIX,
                       refused=f"{path} is not a greentic private key ('{PRIVATE_PREFIX}<base64>')",
                       invalid=f"{path}: not an Ed25519 private key")

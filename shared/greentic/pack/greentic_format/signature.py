"""Greentic's pack signatures, and what trusting one means here.

**`signatures/pack.sig` + `signatures/chain.pem`** (greentic-pack
`crates/greentic-pack/src/builder.rs`: `signature_digest_from_entries`, `SignatureEnvelope`,
`dev_signature`; checked as `crates/greentic-pack/src/reader.rs` `verify_signature` does).
The signed message is the 32-byte BLAKE3 digest of `manifest.cbor`'s bytes, then the SBOM
entry's bytes, then for every SBOM entry in path order `path + "\\n" + hash_blake3`. So it covers
the manifest, the SBOM and through it every entry. `pack.sig` is JSON `{alg: "ed25519", sig:
<base64url, no padding>, digest: <hex of that digest>, signed_at_utc, key_fingerprint?}`
(`key_fingerprint`: BLAKE3 hex of the raw public key, in dev signatures). The key is the first
certificate's of `chain.pem`. Greentic checks nothing else about the chain: under its `Strict`
policy it refuses a self-signed `CN=greentic-dev-local` certificate (the one `greentic-pack
build` makes up per build); under `DevOk` it accepts anything whose signature verifies.

Here, additionally, every certificate of the chain must be issued (name and signature) by the
next one. A chain is self-contained: it proves the archive is unchanged since whoever holds the
leaf key signed it, not who that is. Only anchors the user configures (`--trust CERT.pem`, or an
Ed25519 public key) say who; a chain tied to none is reported as just that.

**Signatures inside `manifest.cbor`** (greentic-pack `crates/packc/src/cli/sign.rs`,
`cli/verify.rs`): `signatures.signatures[] = {key_id, algorithm: "ed25519", signature: <base64>}`,
Ed25519 over the manifest encoded with no signatures. They can only be checked against a key
the user gives, as packc's `verify --key` does.
"""

import base64
import binascii
import io
import itertools
from pathlib import Path
from typing import Literal

import blake3
import cbor2
import msgspec
import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from cryptography.x509.oid import NameOID

from greentic.errors import PackError, PackSignatureError
from greentic.pack.greentic_format.cbor import encode_cbor
from greentic.pack.greentic_format.manifest import MANIFEST_ENTRY, ManifestSignature
from greentic.pack.greentic_format.sbom import CHAIN_ENTRY, SIGNATURE_ENTRY, Sbom
from greentic.pack.keys import PUBLIC_PREFIX, parse_trusted_keys

log = structlog.get_logger(__name__)

DEV_CERTIFICATE_CN = "greentic-dev-local"
Policy = Literal["strict", "dev"]


class SignatureEnvelope(msgspec.Struct, frozen=True, omit_defaults=True):
    """`signatures/pack.sig`."""

    alg: str
    sig: str
    digest: str
    signed_at_utc: str = ""
    key_fingerprint: str | None = None


class GreenticTrust(msgspec.Struct, frozen=True, kw_only=True):
    """What the user trusts: certificates (anchors) and raw Ed25519 public keys."""

    anchors: tuple[bytes, ...] = ()
    """DER certificates; a chain is anchored when it contains one or one issued its root."""
    keys: frozenset[bytes] = frozenset()
    """Raw 32-byte Ed25519 public keys; a chain whose leaf has one is anchored."""
    policy: Policy = "strict"
    """`strict`: when anything is trusted, an unanchored signature is refused. `dev`: accepted
    with a warning."""

    @property
    def configured(self) -> bool:
        return bool(self.anchors or self.keys)


class SignatureReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the signature check established."""

    kind: Literal["unsigned", "chain", "manifest"]
    summary: str
    """One sentence: what was checked and what trust that gives."""
    anchored: bool = False
    """The signer is one the user configured (a `--trust` certificate or key)."""


def _raw_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _trust_text(text: str, source: str) -> tuple[list[bytes], list[bytes]]:
    if "-----BEGIN CERTIFICATE-----" in text:
        try:
            certificates = x509.load_pem_x509_certificates(text.encode())
        except ValueError as exc:
            raise PackError(f"trust {source}: unreadable certificate: {exc}") from None
        return [cert.public_bytes(Encoding.DER) for cert in certificates], []
    if "-----BEGIN PUBLIC KEY-----" in text:
        try:
            key = load_pem_public_key(text.encode())
        except ValueError as exc:
            raise PackError(f"trust {source}: unreadable public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise PackError(f"trust {source}: not an Ed25519 public key")
        return [], [_raw_key(key)]
    return [], [base64.b64decode(key[len(PUBLIC_PREFIX):]) for key in parse_trusted_keys(text)]


def parse_greentic_trust(values: tuple[str, ...] | list[str], policy: Policy = "strict"
                         ) -> GreenticTrust:
    """Trust from `--trust` values: PEM files of certificates (anchors) or an Ed25519
    `PUBLIC KEY`, `.pub` files, or `ed25519:<base64>` keys (comma-separated lists too)."""
    anchors: list[bytes] = []
    keys: list[bytes] = []
    for value in values:
        path = Path(value)
        is_file = not value.startswith(PUBLIC_PREFIX) and "," not in value and path.is_file()
        try:
            found = _trust_text(path.read_text(encoding="utf-8") if is_file else value, value)
        except (OSError, UnicodeDecodeError) as exc:
            raise PackError(f"trust {value}: cannot read it: {exc}") from None
        anchors += found[0]
        keys += found[1]
    return GreenticTrust(anchors=tuple(anchors), keys=frozenset(keys), policy=policy)


def signature_digest(manifest: bytes, sbom_bytes: bytes, sbom: Sbom) -> bytes:
    """The 32 bytes Greentic signs (`signature_digest_from_entries`)."""
    hasher = blake3.blake3(manifest)
    hasher.update(sbom_bytes)
    for file in sorted(sbom.files, key=lambda file: file.path.encode()):
        hasher.update(file.path.encode() + b"\n" + file.hash_blake3.encode())
    return hasher.digest()


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={names[0].value}" if names else cert.subject.rfc4514_string() or "(no subject)"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chain(pem: bytes) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise PackSignatureError(f"unreadable certificate chain: {exc}",
                                 entry=CHAIN_ENTRY) from None
    for index, (cert, issuer) in enumerate(itertools.pairwise(chain)):
        if not _issued_by(cert, issuer):
            raise PackSignatureError(
                f"certificate {index} ({_common_name(cert)}) is not issued by certificate "
                f"{index + 1} ({_common_name(issuer)}): the chain does not link",
                entry=CHAIN_ENTRY)
    return chain


def _anchor(chain: list[x509.Certificate], trust: GreenticTrust) -> str | None:
    """Which configured anchor or key the chain is tied to, if any."""
    leaf_key = chain[0].public_key()
    if isinstance(leaf_key, Ed25519PublicKey) and _raw_key(leaf_key) in trust.keys:
        return f"the trusted key {PUBLIC_PREFIX}{base64.b64encode(_raw_key(leaf_key)).decode()}"
    for der in trust.anchors:
        anchor = x509.load_der_x509_certificate(der)
        if any(cert.public_bytes(Encoding.DER) == der for cert in chain) or \
                _issued_by(chain[-1], anchor):
            return f"the trusted certificate {_common_name(anchor)}"
    return None


def _judge(described: str, anchor: str | None, trust: GreenticTrust, *, entry: str,
           kind: Literal["chain", "manifest"], pack: str) -> SignatureReport:
    if anchor is not None:
        return SignatureReport(kind=kind, anchored=True,
                               summary=f"{described}; trusted: anchored by {anchor}")
    if not trust.configured:
        return SignatureReport(kind=kind, summary=(
            f"{described}; trust: self-contained only, anchored to nothing you configured "
            "(give --trust CERT.pem or a key to establish who signed it)"))
    if trust.policy != "dev":
        raise PackSignatureError(f"{described}, but it is anchored by none of the certificates "
                                 "or keys you trust (policy strict)", entry=entry)
    log.warning("DEV TRUST POLICY: accepting a Greentic pack anchored by nothing trusted",
                pack=pack)
    return SignatureReport(kind=kind, summary=(
        f"{described}; NOT anchored by anything you trust (accepted: policy dev)"))


def verify_chain_signature(entries: dict[str, bytes], sbom_name: str, sbom: Sbom,
                           trust: GreenticTrust, *, pack: str = "") -> SignatureReport:
    """Check `signatures/pack.sig` against the leaf of `signatures/chain.pem` and the chain's
    links, then judge the trust; PackSignatureError names the entry at fault."""
    for present, missing in ((SIGNATURE_ENTRY, CHAIN_ENTRY), (CHAIN_ENTRY, SIGNATURE_ENTRY)):
        if present in entries and missing not in entries:
            raise PackSignatureError(f"signature files incomplete: {present} without it",
                                     entry=missing)
    try:
        envelope = msgspec.json.decode(entries[SIGNATURE_ENTRY], type=SignatureEnvelope)
        signature = base64.b64decode(envelope.sig + "=" * (-len(envelope.sig) % 4),
                                     altchars=b"-_", validate=True)
    except (msgspec.DecodeError, msgspec.ValidationError, binascii.Error, ValueError) as exc:
        raise PackSignatureError(f"unreadable signature: {exc}", entry=SIGNATURE_ENTRY) from None
    if envelope.alg.lower() != "ed25519":
        raise PackSignatureError(f"unsupported signature algorithm {envelope.alg!r}",
                                 entry=SIGNATURE_ENTRY)
    digest = signature_digest(entries[MANIFEST_ENTRY], entries[sbom_name], sbom)
    if envelope.digest.lower() != digest.hex():
        raise PackSignatureError(f"signed digest {envelope.digest[:16]}… is not the archive's "
                                 f"{digest.hex()[:16]}… (manifest, {sbom_name} or an entry "
                                 "changed after signing)", entry=SIGNATURE_ENTRY)
    chain = _chain(entries[CHAIN_ENTRY])
    if not chain:
        raise PackSignatureError("certificate chain is empty", entry=CHAIN_ENTRY)
    leaf = chain[0]
    try:
        key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PackSignatureError(f"the leaf certificate's key: {exc}", entry=CHAIN_ENTRY) from None
    if not isinstance(key, Ed25519PublicKey):
        raise PackSignatureError("the leaf certificate's key is not Ed25519", entry=CHAIN_ENTRY)
    if envelope.key_fingerprint and \
            envelope.key_fingerprint.lower() != blake3.blake3(_raw_key(key)).hexdigest():
        raise PackSignatureError("key_fingerprint names another key than chain.pem's leaf",
                                 entry=SIGNATURE_ENTRY)
    try:
        key.verify(signature, digest)
    except InvalidSignature:
        raise PackSignatureError(f"signature does not verify with the leaf certificate "
                                 f"{_common_name(leaf)} of {CHAIN_ENTRY}",
                                 entry=SIGNATURE_ENTRY) from None
    root = chain[-1]
    self_signed = root.issuer == root.subject and _issued_by(root, root)
    dev = self_signed and len(chain) == 1 and _common_name(root) == f"CN={DEV_CERTIFICATE_CN}"
    shape = (f"{len(chain)} certificate{'s' if len(chain) > 1 else ''}, "
             + ("self-signed: Greentic's per-build dev certificate" if dev else
                f"root {_common_name(root)} self-signed" if self_signed else
                f"ending at {_common_name(root)}, issued by {root.issuer.rfc4514_string()}"))
    described = (f"{SIGNATURE_ENTRY} (Ed25519 over the BLAKE3 digest of manifest, SBOM and every "
                 f"entry) verifies with leaf {_common_name(leaf)} of {CHAIN_ENTRY} ({shape})")
    return _judge(described, _anchor(chain, trust), trust, entry=SIGNATURE_ENTRY, kind="chain",
                  pack=pack)


def unsigned_manifest_bytes(manifest: bytes) -> bytes:
    """`manifest.cbor` as packc signs it: the same bytes with `signatures` emptied (the rest
    of the encoding is untouched, so no re-encoding can differ from greentic-types')."""
    stream = io.BytesIO(manifest)
    decoder = cbor2.CBORDecoder(stream)
    head = manifest[:1]
    if not head or head[0] >> 5 != 5:
        raise PackError("not a CBOR map", entry=MANIFEST_ENTRY)
    info = head[0] & 0x1F
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    if info < 24:
        count: int | None = info
        stream.seek(1)
    elif info in sizes:
        count = int.from_bytes(manifest[1:1 + sizes[info]], "big")
        stream.seek(1 + sizes[info])
    else:
        count = None  # indefinite length, up to the break byte 0xff
        stream.seek(1)
    index = 0
    while (count is None and manifest[stream.tell():stream.tell() + 1] not in (b"\xff", b"")) \
            or (count is not None and index < count):
        key = decoder.decode()
        start = stream.tell()
        decoder.decode()
        if key == "signatures":
            return manifest[:start] + encode_cbor({"signatures": []}) + manifest[stream.tell():]
        index += 1
    raise PackError("no `signatures` field", entry=MANIFEST_ENTRY)


def verify_manifest_signatures(manifest: bytes, signatures: list[ManifestSignature],
                               trust: GreenticTrust, *, pack: str = "") -> SignatureReport:
    """Check the signatures packc embeds in `manifest.cbor` against the trusted keys."""
    ids = ", ".join(sorted({signature.key_id for signature in signatures}))
    described = f"{MANIFEST_ENTRY} carries {len(signatures)} Ed25519 signature(s) (key ids {ids})"
    if not trust.keys:
        unchecked = (f"{described}, NOT verified: they can only be checked against a public key "
                     "you give (--trust KEY.pem or ed25519:…)")
        if trust.configured and trust.policy != "dev":
            raise PackSignatureError(f"{unchecked} (policy strict)", entry=MANIFEST_ENTRY)
        return SignatureReport(kind="manifest", summary=unchecked)
    try:
        message = unsigned_manifest_bytes(manifest)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise PackSignatureError(f"unreadable CBOR: {exc}", entry=MANIFEST_ENTRY) from None
    for signature in signatures:
        if signature.algorithm != "ed25519":
            continue
        try:
            raw = base64.b64decode(signature.signature, validate=True)
        except binascii.Error:
            continue
        for key in trust.keys:
            try:
                Ed25519PublicKey.from_public_bytes(key).verify(raw, message)
            except (InvalidSignature, ValueError):
                continue
            anchor = f"the trusted key {PUBLIC_PREFIX}{base64.b64encode(key).decode()}"
            return _judge(f"{described}, key id {signature.key_id} verifies", anchor, trust,
                          entry=MANIFEST_ENTRY, kind="manifest", pack=pack)
    raise PackSignatureError(f"{described}; none verifies with a key you trust",
                             entry=MANIFEST_ENTRY)


def make_signature_entries(entries: dict[str, bytes], sbom_name: str, sbom: Sbom,
                           key: Ed25519PrivateKey, chain_pem: bytes) -> dict[str, bytes]:
    """`signatures/pack.sig` and `signatures/chain.pem` for an archive's entries, as
    greentic-pack's external signer writes them (`key` must be `chain_pem`'s leaf key)."""
    digest = signature_digest(entries[MANIFEST_ENTRY], entries[sbom_name], sbom)
    signature = base64.urlsafe_b64encode(key.sign(digest)).rstrip(b"=").decode()
    envelope = SignatureEnvelope(alg="ed25519", sig=signature, digest=digest.hex(),
                                 signed_at_utc="1970-01-01T00:00:00Z")
    return {SIGNATURE_ENTRY: msgspec.json.format(msgspec.json.encode(envelope), indent=2),
            CHAIN_ENTRY: chain_pem.replace(b"\r\n", b"\n")}

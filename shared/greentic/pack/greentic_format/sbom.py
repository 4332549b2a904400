"""Greentic's SBOM (`sbom.cbor`, or `sbom.json` in the legacy layout): every entry's BLAKE3.

Format as greentic-pack writes it (`crates/greentic-pack/src/builder.rs`: `SbomEntry`,
`SBOM_FORMAT`; `crates/packc/src/build.rs`: `record_sbom_entry`, `package_gtpack`):
`{format: "greentic-sbom-v1", files: [{path, size, hash_blake3, media_type}]}`, where
`hash_blake3` is the bare lower-case hex BLAKE3-256 of the entry's bytes (no `blake3:` prefix).
The current layout encodes it as greentic-types canonical CBOR, the legacy one as pretty JSON.
It lists every entry but itself and `signatures/*`. Checked as Greentic's `verify_sbom` does
(reader.rs), plus the sizes, and refused rather than only warned about: Greentic's reader
merely warns when a current-layout archive does not match its SBOM.
"""

import blake3
import msgspec

from greentic.errors import PackError
from greentic.pack.greentic_format.cbor import decode_cbor

SBOM_FORMAT = "greentic-sbom-v1"
SBOM_ENTRIES = ("sbom.cbor", "sbom.json")
SIGNATURE_ENTRY = "signatures/pack.sig"
CHAIN_ENTRY = "signatures/chain.pem"
UNLISTED = frozenset({*SBOM_ENTRIES, SIGNATURE_ENTRY, CHAIN_ENTRY})


class SbomEntry(msgspec.Struct, frozen=True):
    """One archive entry as the SBOM records it."""

    path: str
    size: int
    hash_blake3: str
    media_type: str


class Sbom(msgspec.Struct, frozen=True):
    format: str
    files: list[SbomEntry]


def blake3_hex(data: bytes) -> str:
    """Greentic's entry digest: `blake3::hash(bytes).to_hex()`."""
    return blake3.blake3(data).hexdigest()


def read_sbom(entries: dict[str, bytes]) -> tuple[str, Sbom]:
    """The SBOM entry's name and content (`sbom.cbor` first, as Greentic's reader looks)."""
    for name in SBOM_ENTRIES:
        if name in entries:
            break
    else:
        raise PackError("missing entry: Greentic archives list their entries in sbom.cbor "
                        "(current layout) or sbom.json (legacy)", entry="sbom.cbor")
    try:
        raw = (decode_cbor(entries[name], name) if name == "sbom.cbor"
               else msgspec.json.decode(entries[name]))
        sbom = msgspec.convert(raw, type=Sbom)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PackError(f"unreadable SBOM: {exc}", entry=name) from None
    if sbom.format != SBOM_FORMAT:
        raise PackError(f"SBOM format {sbom.format!r}, expected {SBOM_FORMAT!r}", entry=name)
    return name, sbom


def check_digests(entries: dict[str, bytes], sbom: Sbom, sbom_name: str) -> None:
    """Every listed entry exists with its size and BLAKE3, and no entry goes unlisted."""
    listed: dict[str, SbomEntry] = {}
    for file in sbom.files:
        if file.path in listed:
            raise PackError(f"listed twice in {sbom_name}", entry=file.path)
        listed[file.path] = file
    for path, file in listed.items():
        content = entries.get(path)
        if content is None:
            raise PackError(f"missing entry: listed in {sbom_name} but not in the archive",
                            entry=path)
        if len(content) != file.size:
            raise PackError(f"{len(content)} bytes but {sbom_name} records {file.size} "
                            "(tampered or corrupt)", entry=path)
        actual = blake3_hex(content)
        if actual != file.hash_blake3.lower():
            raise PackError(f"BLAKE3 {actual[:16]}… does not match {sbom_name}'s "
                            f"{file.hash_blake3[:16]}… (tampered or corrupt)", entry=path)
    for name in entries:
        if name not in listed and name not in UNLISTED:
            raise PackError(f"extra entry: not listed in {sbom_name}", entry=name)

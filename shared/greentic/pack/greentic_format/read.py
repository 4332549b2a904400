"""Reading and verifying a Greentic `.gtpack` (either layout): structure, SBOM digests,
signature, manifest, and the manifest against the entries.

Order as ours (`greentic.pack.archive.read_pack`): ZIP structure, every digest, the signature,
only then the manifest's content. Greentic's reader (`crates/greentic-pack/src/reader.rs`
`open_pack`) decodes the manifest first and, for current-layout archives, only warns about a
digest mismatch or a bad signature; here both are refusals naming the entry.
"""

import hashlib

import msgspec

from greentic.errors import PackError, PackSignatureError
from greentic.pack.archive import DEFAULT_LIMITS, PackLimits
from greentic.pack.greentic_format.cbor import decode_cbor
from greentic.pack.greentic_format.detect import FORMAT_NAMES, PackFormat
from greentic.pack.greentic_format.entries import read_entries
from greentic.pack.greentic_format.manifest import (
    MANIFEST_ENTRY,
    CurrentManifest,
    LegacyManifest,
    decode_current_manifest,
    decode_legacy_manifest,
)
from greentic.pack.greentic_format.sbom import (
    CHAIN_ENTRY,
    SIGNATURE_ENTRY,
    Sbom,
    blake3_hex,
    check_digests,
    read_sbom,
)
from greentic.pack.greentic_format.signature import (
    GreenticTrust,
    SignatureReport,
    verify_chain_signature,
    verify_manifest_signatures,
)


class ComponentSummary(msgspec.Struct, frozen=True):
    id: str
    version: str
    world: str


class FlowSummary(msgspec.Struct, frozen=True):
    id: str
    entrypoints: list[str]
    """Entrypoint names (current layout); empty in the legacy one."""
    start: str
    """The node the flow starts at (the `default` entrypoint's, or the legacy `entry`)."""


class PackSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A Greentic manifest's essentials, for `greentic pack inspect`."""

    format: PackFormat
    pack_id: str
    version: str
    kind: str
    publisher: str
    components: list[ComponentSummary]
    flows: list[FlowSummary]
    assets: int
    signature: str
    """How it is signed (`none`, the chain's leaf, or manifest signatures); not verified."""

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES[self.format]


class GreenticPack(msgspec.Struct, kw_only=True):
    """A Greentic archive's entries and decoded manifest (`current` or `legacy`)."""

    format: PackFormat
    entries: dict[str, bytes]
    current: CurrentManifest | None = None
    legacy: LegacyManifest | None = None

    def summary(self) -> PackSummary:
        assets = sum(name.startswith("assets/") for name in self.entries)
        if self.current is not None:
            manifest = self.current
            signed = ("in manifest.cbor: " + ", ".join(s.key_id for s in
                                                       manifest.signatures.signatures)
                      if manifest.signatures.signatures else "")
            return PackSummary(
                format=self.format, pack_id=manifest.pack_id, version=manifest.version,
                kind=manifest.kind, publisher=manifest.publisher,
                components=[ComponentSummary(c.id, c.version, c.world)
                            for c in manifest.components],
                flows=[FlowSummary(f.id, f.entrypoints or list(f.flow.entrypoints),
                                   str(f.flow.entrypoints.get("default", "")))
                       for f in manifest.flows],
                assets=assets, signature=self._chain_signature() or signed or "none (unsigned)")
        assert self.legacy is not None
        meta = self.legacy.meta
        return PackSummary(
            format=self.format, pack_id=meta.pack_id, version=meta.version,
            kind=meta.kind or "-", publisher=", ".join(meta.authors) or meta.vendor or "",
            components=[ComponentSummary(c.name, c.version, c.world or "-")
                        for c in self.legacy.components],
            flows=[FlowSummary(f.id, [], f.entry) for f in self.legacy.flows],
            assets=assets, signature=self._chain_signature() or "none (unsigned)")

    def _chain_signature(self) -> str:
        present = [name for name in (SIGNATURE_ENTRY, CHAIN_ENTRY) if name in self.entries]
        return " + ".join(present)


def _manifest(pack_format: PackFormat, entries: dict[str, bytes]) -> GreenticPack:
    if MANIFEST_ENTRY not in entries:
        raise PackError("missing entry: every Greentic archive has one", entry=MANIFEST_ENTRY)
    if pack_format == "greentic-legacy":
        return GreenticPack(format=pack_format, entries=entries,
                            legacy=decode_legacy_manifest(entries))
    return GreenticPack(format=pack_format, entries=entries,
                        current=decode_current_manifest(entries[MANIFEST_ENTRY]))


def read_greentic_pack(data: bytes, pack_format: PackFormat,
                       limits: PackLimits = DEFAULT_LIMITS) -> GreenticPack:
    """The entries and manifest of a Greentic archive, structure checked, nothing verified."""
    return _manifest(pack_format, read_entries(data, limits))


class GreenticVerification(msgspec.Struct, kw_only=True):
    """A Greentic archive that verified: its digests all matched; how it is signed."""

    pack: GreenticPack
    sbom_name: str
    sbom: Sbom
    signature: SignatureReport


def _check_component_manifests(manifest: CurrentManifest, entries: dict[str, bytes]) -> None:
    """The `component_manifests@v1` index against its files (greentic-pack reader.rs
    `verify_component_manifest_files`: cbor, `sha256:<hex>` of the file, matching id)."""
    inline = {component.id: component for component in manifest.components}
    for entry in manifest.component_manifest_index():
        where = entry.manifest_file
        if entry.encoding != "cbor":
            raise PackError(f"component manifest encoding {entry.encoding!r}, expected cbor",
                            entry=where)
        content = entries.get(where)
        if content is None:
            raise PackError(f"missing entry: manifest.cbor indexes it for component "
                            f"{entry.component_id!r}", entry=where)
        actual = "sha256:" + hashlib.sha256(content).hexdigest()
        if entry.content_hash is not None and entry.content_hash.lower() != actual:
            raise PackError(f"{actual[:23]}… is not the content_hash manifest.cbor records "
                            f"({entry.content_hash[:23]}…)", entry=where)
        decoded = decode_cbor(content, where)
        if not isinstance(decoded, dict) or decoded.get("id") != entry.component_id:
            raise PackError(f"is not component {entry.component_id!r}'s manifest", entry=where)
        own = inline.get(entry.component_id)
        if own is not None and (decoded.get("version"), decoded.get("world")) != \
                (own.version, own.world):
            raise PackError(f"version/world differ from component {own.id!r} in manifest.cbor",
                            entry=where)


def _check_legacy_files(manifest: LegacyManifest, entries: dict[str, bytes]) -> None:
    """Each component's and flow's file exists with the BLAKE3 the manifest records."""
    files = [(c.file_wasm, c.hash_blake3, f"component {c.name!r}") for c in manifest.components]
    files += [(f.file_json, f.hash_blake3, f"flow {f.id!r}") for f in manifest.flows]
    for path, digest, owner in files:
        if path not in entries:
            raise PackError(f"missing entry of {owner}", entry=path)
        if blake3_hex(entries[path]) != digest.lower():
            raise PackError(f"does not match the BLAKE3 manifest.cbor records for {owner}",
                            entry=path)
    for flow in manifest.flows:
        if flow.file_yaml not in entries:
            raise PackError(f"missing entry of flow {flow.id!r}", entry=flow.file_yaml)


UNSIGNED = {"greentic-current": "unsigned: no signatures/pack.sig and no signature in "
            "manifest.cbor (Greentic's packc writes current-layout archives unsigned)",
            "greentic-legacy": "unsigned: no signatures/pack.sig (built with Signing::None)"}


def verify_greentic_pack(data: bytes, pack_format: PackFormat, trust: GreenticTrust, *,
                         limits: PackLimits = DEFAULT_LIMITS, name: str = ""
                         ) -> GreenticVerification:
    """Verify a Greentic archive completely; PackError (PackSignatureError for the
    signature) names the entry at fault."""
    entries = read_entries(data, limits)
    if MANIFEST_ENTRY not in entries:
        raise PackError("missing entry: every Greentic archive has one", entry=MANIFEST_ENTRY)
    sbom_name, sbom = read_sbom(entries)
    check_digests(entries, sbom, sbom_name)
    report: SignatureReport | None = None
    if SIGNATURE_ENTRY in entries or CHAIN_ENTRY in entries:
        report = verify_chain_signature(entries, sbom_name, sbom, trust, pack=name)
    pack = _manifest(pack_format, entries)
    if pack.current is not None:
        _check_component_manifests(pack.current, entries)
        signatures = pack.current.signatures.signatures
        if report is None and signatures:
            report = verify_manifest_signatures(entries[MANIFEST_ENTRY], signatures, trust,
                                                pack=name)
    if pack.legacy is not None:
        _check_legacy_files(pack.legacy, entries)
    if report is None:
        if trust.configured and trust.policy != "dev":
            raise PackSignatureError("unsigned pack, and you configured trusted certificates or "
                                     "keys (policy strict)", entry=SIGNATURE_ENTRY)
        report = SignatureReport(kind="unsigned", summary=UNSIGNED[pack_format])
    return GreenticVerification(pack=pack, sbom_name=sbom_name, sbom=sbom, signature=report)

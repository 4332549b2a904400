"""`.gtpack`: build a pack source directory into a deterministic ZIP, sign it, read it back.

Layout (entries sorted, stored, 1980-01-01 00:00:00, mode 0644, regular files only):
`manifest.cbor`, `sbom.json`, `flows/<id>/flow.ygtc`, `components/<id>@<version>/component.wasm`,
`assets/…`, `signatures/pack.sig`. Reading checks the ZIP structure first (paths, types,
duplicates, sizes), then every entry against the SBOM, then the signature, then the manifest.
"""

import hashlib
import io
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
from nacl.signing import SigningKey

from greentic.errors import ConfigError, GreenticError, PackError
from greentic.flow.loader import load_flow
from greentic.flow.model import Flow
from greentic.pack.devsource import dev_component_files, read_dev_pack
from greentic.pack.manifest import (
    FORMAT,
    MANIFEST_ENTRY,
    PackComponent,
    PackFlow,
    PackManifest,
    check_references,
    check_version,
    decode_manifest,
    encode_manifest,
)
from greentic.pack.sign import SIGNATURE_ENTRY, Trust, make_signature, verify_pack_signature
from greentic.types.component import ComponentManifest

SBOM_ENTRY = "sbom.json"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = stat.S_IFREG | 0o644
COMPONENT_CALLS = ("component.exec", "mcp")
MEDIA_TYPES = {".cbor": "application/cbor", ".json": "application/json",
               ".ygtc": "application/yaml", ".yaml": "application/yaml",
               ".wasm": "application/wasm"}


class PackLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What a reader accepts before looking at any content."""

    max_archive_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 512 * 1024 * 1024
    """Sum of the sizes the entries declare (uncompressed)."""
    max_entries: int = 10_000


DEFAULT_LIMITS = PackLimits()


class SbomFile(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    size: int
    sha256: str
    media_type: str


class Sbom(msgspec.Struct, forbid_unknown_fields=True):
    """`sbom.json`: every file of the pack but itself and the signature."""

    format: str
    pack_id: str
    version: str
    files: list[SbomFile]


class PackArchive(msgspec.Struct, kw_only=True):
    """A pack read from a `.gtpack`: checked, and verified when read with a `Trust`."""

    manifest: PackManifest
    entries: dict[str, bytes]
    sbom: Sbom
    signed_by: str | None
    """The public key whose signature verified (None: not verified or unsigned)."""

    def flow_source(self, flow: PackFlow) -> str:
        return self.entries[flow.file].decode("utf-8")


# --- ZIP ---------------------------------------------------------------------------------

def write_zip(entries: dict[str, bytes]) -> bytes:
    """The deterministic ZIP of `entries`: same entries, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix: external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def check_entry_name(name: str) -> None:
    """Refuse names that could leave the extraction directory or are not plain file paths."""
    if "\\" in name or "\x00" in name:
        raise PackError("backslash or NUL in an entry name", entry=name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise PackError("absolute path (zip-slip)", entry=name)
    parts = name.split("/")
    if ".." in parts:
        raise PackError("'..' in the path (zip-slip)", entry=name)
    if name.endswith("/"):
        raise PackError("directory entry: a pack holds regular files only", entry=name)
    if "" in parts or "." in parts:
        raise PackError("path is not normalised (empty or '.' part)", entry=name)


def open_zip(data: bytes, limits: PackLimits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """The archive, or PackError when it is over the size limit or no ZIP at all."""
    if len(data) > limits.max_archive_bytes:
        raise PackError(f"archive is {len(data)} bytes, over the limit of "
                        f"{limits.max_archive_bytes}")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError,
            NotImplementedError) as exc:  # NotImplementedError: a ZIP version zipfile lacks
        raise PackError(f"not a ZIP archive: {exc}") from None


def _check_method(info: zipfile.ZipInfo, deflated: bool) -> None:
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise PackError(f"declares {info.file_size} bytes but holds "
                            f"{info.compress_size} (zip bomb or corrupt archive)",
                            entry=info.filename)
    elif not deflated:
        raise PackError("compressed entry: .gtpack entries are stored (this also keeps a zip "
                        "bomb from expanding)", entry=info.filename)
    elif info.compress_type != zipfile.ZIP_DEFLATED:
        raise PackError(f"compression method {info.compress_type} (Greentic packs are stored "
                        "or deflated)", entry=info.filename)


def read_zip(data: bytes, limits: PackLimits = DEFAULT_LIMITS, *,
             deflated: bool = False) -> dict[str, bytes]:
    """The entries of a `.gtpack`, after structural checks; PackError names the entry.

    `deflated` reads Greentic's archives (greentic-pack `reader.rs` `read_archive_entries`):
    deflated entries are allowed too — every declared size is checked against the limits
    before anything is inflated, and nothing is inflated past its declared size — and
    directory entries are skipped."""
    with open_zip(data, limits) as archive:
        infos = [info for info in archive.infolist() if not (deflated and info.is_dir())]
        if len(infos) > limits.max_entries:
            raise PackError(f"{len(infos)} entries, over the limit of {limits.max_entries}")
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            if name in seen:
                raise PackError("entry name appears twice", entry=name)
            seen.add(name)
            check_entry_name(name)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0: the writer recorded no type
            if kind == stat.S_IFLNK:
                raise PackError("symbolic link: a pack holds regular files only", entry=name)
            if kind not in (0, stat.S_IFREG):
                raise PackError(f"not a regular file (type {kind:o})", entry=name)
            if info.flag_bits & 0x1:
                raise PackError("encrypted entry", entry=name)
            _check_method(info, deflated)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise PackError(f"entries add up to more than {limits.max_total_bytes} bytes "
                                "uncompressed, over the limit", entry=name)
        entries: dict[str, bytes] = {}
        for info in infos:
            try:
                with archive.open(info) as file:
                    content = file.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError,
                    NotImplementedError) as exc:  # strong encryption, a bad CRC, truncation
                raise PackError(f"unreadable: {exc}", entry=info.filename) from None
            if len(content) != info.file_size:
                raise PackError(f"declares {info.file_size} bytes but holds "
                                f"{'more' if len(content) > info.file_size else len(content)} "
                                "(zip bomb or corrupt archive)", entry=info.filename)
            entries[info.filename] = content
    return entries


# --- SBOM ----------------------------------------------------------------------------------

def make_sbom(pack_id: str, version: str, entries: dict[str, bytes]) -> bytes:
    files = [SbomFile(name, len(entries[name]), hashlib.sha256(entries[name]).hexdigest(),
                      MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"))
             for name in sorted(entries) if name not in (SBOM_ENTRY, SIGNATURE_ENTRY)]
    return msgspec.json.format(msgspec.json.encode(
        Sbom(format="greentic-py-sbom/1", pack_id=pack_id, version=version, files=files))) + b"\n"


def check_sbom(entries: dict[str, bytes]) -> Sbom:
    """Every entry is listed in the SBOM with its size and digest, and nothing else is."""
    for required in (SBOM_ENTRY, MANIFEST_ENTRY):
        if required not in entries:
            raise PackError("missing entry", entry=required)
    try:
        sbom = msgspec.json.decode(entries[SBOM_ENTRY], type=Sbom)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PackError(f"unreadable SBOM: {exc}", entry=SBOM_ENTRY) from None
    listed = {file.path: file for file in sbom.files}
    if len(listed) != len(sbom.files):
        raise PackError("a path is listed twice", entry=SBOM_ENTRY)
    for name in sorted(entries):
        if name not in (SBOM_ENTRY, SIGNATURE_ENTRY) and name not in listed:
            raise PackError("extra entry: not listed in the SBOM", entry=name)
    for path, file in sorted(listed.items()):
        content = entries.get(path)
        if content is None:
            raise PackError("missing entry: listed in the SBOM but not in the archive",
                            entry=path)
        if len(content) != file.size or hashlib.sha256(content).hexdigest() != file.sha256:
            raise PackError("content does not match its SBOM digest (tampered or corrupt)",
                            entry=path)
    return sbom


# --- build -----------------------------------------------------------------------------------

def pack_operations(components: Iterable[PackComponent | ComponentManifest],
                    ) -> dict[str, list[str]]:
    """component id → the operations it offers: what flows of the pack may call by name."""
    return {c.id: list(c.operations) for c in components}


def called_components(flow: Flow) -> set[str]:
    """Component ids a flow calls by name (templated names are resolved only at run time)."""
    found = set(flow.bindings.values())
    for node in flow.nodes.values():
        if node.op in COMPONENT_CALLS and isinstance(node.args, dict):
            name = node.args.get("component")
            if isinstance(name, str) and "{{" not in name:
                found.add(name)
    return found


def build_pack(directory: str | Path) -> bytes:
    """An unsigned `.gtpack` of a pack source directory (`pack.yaml`, flows, components,
    `assets/`); the same source gives the same bytes."""
    directory = Path(directory)
    source, flows = read_dev_pack(directory)
    check_version(source.version, "pack.yaml:version")
    entries: dict[str, bytes] = {}
    components = []
    for index, (component, path) in enumerate(dev_component_files(directory, source)):
        check_version(component.version, f"pack.yaml:components[{index}].version")
        data = path.read_bytes()
        name = f"components/{component.id}@{component.version}/component.wasm"
        entries[name] = data
        components.append(PackComponent(
            id=component.id, version=component.version, world=component.world,
            capabilities=component.capabilities, operations=list(component.operations),
            file=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
            default_operation=component.default_operation))
    listed = {entry.id: entry for entry in source.flows}
    ids = {flow.id for flow in flows}
    offered = pack_operations(components)
    pack_flows = []
    for flow in flows:
        loaded = load_flow(flow.source, flow.file, pack_flows=ids, bindings=flow.bindings,
                           components=offered)
        name = f"flows/{flow.id}/flow.ygtc"
        entries[name] = flow.source.encode("utf-8")
        entry = listed.get(flow.id)
        pack_flows.append(PackFlow(
            id=flow.id, file=name, entrypoints=list(entry.entrypoints) if entry else [],
            tags=list(entry.tags) if entry else [],
            components=sorted(called_components(loaded)), bindings=dict(loaded.bindings)))
    assets = []
    assets_dir = directory / "assets"
    if assets_dir.is_dir():
        for path in sorted(assets_dir.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if path.is_symlink():
                raise PackError("symbolic link: a pack holds regular files only", entry=relative)
            if path.is_file():
                check_entry_name(relative)
                entries[relative] = path.read_bytes()
                assets.append(relative)
    manifest = PackManifest(
        format=FORMAT, pack_id=source.pack_id, version=source.version, kind=source.kind,
        publisher=source.publisher, components=components, flows=pack_flows, assets=assets)
    try:
        check_references(manifest)
    except PackError as exc:
        raise PackError(exc.reason, entry=f"{directory / 'pack.yaml'}: {exc.entry}") from None
    entries[MANIFEST_ENTRY] = encode_manifest(manifest)
    entries[SBOM_ENTRY] = make_sbom(source.pack_id, source.version, entries)
    return write_zip(entries)


def sign_pack(data: bytes, key: SigningKey, limits: PackLimits = DEFAULT_LIMITS) -> bytes:
    """`data` with `signatures/pack.sig` by `key` (replacing any); refuses a pack that does
    not check out."""
    entries = read_zip(data, limits)
    check_sbom(entries)
    check_contents(decode_manifest(entries[MANIFEST_ENTRY]), entries)
    entries.pop(SIGNATURE_ENTRY, None)
    entries[SIGNATURE_ENTRY] = make_signature(entries, key)
    return write_zip(entries)


# --- read ------------------------------------------------------------------------------------

def check_contents(manifest: PackManifest, entries: dict[str, bytes]) -> None:
    """The entries are exactly what the manifest describes, with the digests it records, and
    every flow calls only components the pack has."""
    described = {MANIFEST_ENTRY, SBOM_ENTRY, SIGNATURE_ENTRY, *manifest.assets}
    for component in manifest.components:
        described.add(component.file)
        content = entries.get(component.file)
        if content is None:
            raise PackError(f"missing entry of component {component.id!r}",
                            entry=component.file)
        if (component.file != f"components/{component.id}@{component.version}/component.wasm"):
            raise PackError(f"component {component.id!r} must live at components/<id>@<version>"
                            "/component.wasm", entry=component.file)
        if hashlib.sha256(content).hexdigest() != component.sha256 or \
                len(content) != component.size:
            raise PackError(f"component {component.id!r} does not match the manifest digest",
                            entry=component.file)
    for asset in manifest.assets:
        if not asset.startswith("assets/") or asset not in entries:
            raise PackError("asset missing or outside assets/", entry=asset)
    ids = {flow.id for flow in manifest.flows}
    known = {component.id for component in manifest.components}
    offered = pack_operations(manifest.components)
    for flow in manifest.flows:
        described.add(flow.file)
        if flow.file not in entries:
            raise PackError(f"missing entry of flow {flow.id!r}", entry=flow.file)
        try:
            loaded = load_flow(entries[flow.file].decode("utf-8"), flow.file, pack_flows=ids,
                               bindings=flow.bindings, components=offered)
        except (GreenticError, UnicodeDecodeError) as exc:
            raise PackError(f"flow does not load: {exc}", entry=flow.file) from None
        missing = sorted(called_components(loaded) - known)
        if missing:
            raise PackError(f"flow {flow.id!r} calls component(s) {missing}, which the pack "
                            f"does not contain (components: {sorted(known)})", entry=flow.file)
    for name in sorted(entries):
        if name not in described:
            raise PackError("extra entry: not described by the manifest", entry=name)


def read_pack(data: bytes, *, trust: Trust | None, limits: PackLimits = DEFAULT_LIMITS,
              name: str = "") -> PackArchive:
    """Read and check a `.gtpack`. With `trust`, the signature is verified before the
    manifest is even decoded; without it (inspect), nothing is verified."""
    entries = read_zip(data, limits)
    sbom = check_sbom(entries)
    signed_by = verify_pack_signature(entries, trust, pack=name) if trust is not None else None
    manifest = decode_manifest(entries[MANIFEST_ENTRY])
    check_contents(manifest, entries)
    return PackArchive(manifest=manifest, entries=entries, sbom=sbom, signed_by=signed_by)


def read_pack_file(path: str | Path, *, trust: Trust | None,
                   limits: PackLimits = DEFAULT_LIMITS) -> PackArchive:
    """`read_pack` of a file, refusing one over the size limit before reading it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_archive_bytes:
            raise PackError(f"archive is {size} bytes, over the limit of "
                            f"{limits.max_archive_bytes}", entry=str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read pack {path}: {exc.strerror}") from None
    return read_pack(data, trust=trust, limits=limits, name=str(path))


def describe(archive: PackArchive) -> dict[str, Any]:
    """The manifest as plain data (for `greentic pack inspect --json`)."""
    return msgspec.to_builtins(archive.manifest)

"""Which `.gtpack` format a file is: ours, or one of Greentic's two layouts.

Told apart by entry names, which is all a reader needs before choosing how to check a file:
- **Greentic, current layout** (greentic-pack `crates/packc/src/build.rs`, `package_gtpack`):
  `sbom.cbor`, a `manifest.cbor` encoded by greentic-types' `encode_pack_manifest`.
- **Greentic, legacy layout** (greentic-pack `crates/greentic-pack/src/builder.rs`,
  `PackBuilder::build`): `sbom.json` beside `manifest.json` and `provenance.json` (always
  written), signed with `signatures/pack.sig` + `signatures/chain.pem`.
- **greentic-py** (ours, `greentic.pack.archive`): `sbom.json` and none of those.
An archive without any SBOM is told by its manifest's first field. Anything else, including
what is no ZIP at all, is left to our own reader, so its refusals stay exactly what they were.
"""

import zipfile
from typing import Literal

from greentic.errors import PackError
from greentic.pack.archive import DEFAULT_LIMITS, open_zip
from greentic.pack.greentic_format.cbor import decode_cbor

PackFormat = Literal["greentic-py", "greentic-current", "greentic-legacy"]
FORMAT_NAMES: dict[PackFormat, str] = {
    "greentic-py": "greentic-py",
    "greentic-current": "Greentic (current layout)",
    "greentic-legacy": "Greentic (legacy layout)",
}
LEGACY_ONLY = ("manifest.json", "provenance.json", "signatures/chain.pem")
PEEK_LIMIT = 16 * 1024 * 1024  # Greentic's own per-entry limit (reader.rs MAX_FILE_BYTES)


def _format_by_manifest(archive: zipfile.ZipFile) -> PackFormat:
    try:
        info = archive.getinfo("manifest.cbor")
        if info.file_size > PEEK_LIMIT:
            return "greentic-py"
        manifest = decode_cbor(archive.read(info), "manifest.cbor")
    except (KeyError, PackError, zipfile.BadZipFile, OSError, ValueError, EOFError,
            NotImplementedError):
        return "greentic-py"
    if isinstance(manifest, dict):
        first = next(iter(manifest), None)
        if first == "schema_version":
            return "greentic-current"
        if first == "meta":
            return "greentic-legacy"
    return "greentic-py"


def detect_format(data: bytes) -> PackFormat:
    """The format of a `.gtpack`'s bytes (`greentic-py` when it is none of Greentic's)."""
    try:
        archive = open_zip(data, DEFAULT_LIMITS)
    except PackError:
        return "greentic-py"
    with archive:
        names = set(archive.namelist())
        if "sbom.cbor" in names:
            return "greentic-current"
        if "sbom.json" in names:
            return ("greentic-legacy" if any(name in names for name in LEGACY_ONLY)
                    else "greentic-py")
        return _format_by_manifest(archive)

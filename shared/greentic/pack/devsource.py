"""Dev-mode pack sources: a directory with `pack.yaml` and flow files, read unsigned.

Signed `.gtpack` archives replace this for production (the packs issue).
"""

from pathlib import Path

import msgspec
import yaml

from greentic.errors import ConfigError


class PackFlowEntry(msgspec.Struct):
    id: str
    file: str


class PackSourceManifest(msgspec.Struct):
    """The part of `pack.yaml` dev mode needs."""

    pack_id: str
    version: str = "0.0.0"
    flows: list[PackFlowEntry] = []


class PackFlowSource(msgspec.Struct):
    id: str
    file: str
    source: str


def read_dev_pack(directory: Path) -> tuple[PackSourceManifest, list[PackFlowSource]]:
    """Read `pack.yaml` and the flow files it lists (all of `flows/*.ygtc` when it lists none)."""
    manifest_path = directory / "pack.yaml"
    try:
        manifest = msgspec.convert(yaml.safe_load(manifest_path.read_text(encoding="utf-8")),
                                   PackSourceManifest)
    except OSError as exc:
        raise ConfigError(f"cannot read {manifest_path}: {exc.strerror}") from None
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{manifest_path}: {exc}") from None
    entries = manifest.flows or [PackFlowEntry(id=p.stem, file=str(p.relative_to(directory)))
                                 for p in sorted(directory.glob("flows/*.ygtc"))]
    flows = []
    for entry in entries:
        path = directory / entry.file
        try:
            flows.append(PackFlowSource(entry.id, str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"{manifest_path}: flow {entry.id!r}: cannot read {path}: "
                              f"{exc.strerror}") from None
    return manifest, flows

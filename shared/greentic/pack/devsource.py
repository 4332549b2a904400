"""Dev-mode pack sources: a directory with `pack.yaml` and flow files, read unsigned.

Signed `.gtpack` archives (`greentic.pack.archive`) are built from the same directories.
"""

from pathlib import Path

import msgspec
import yaml

from greentic.errors import ConfigError
from greentic.flow.sidecar import sidecar_bindings
from greentic.pack.greentic_source import (
    GreenticPackConfig,
    greentic_component,
    is_greentic_pack_yaml,
    read_greentic_pack_yaml,
)
from greentic.types.component import ComponentManifest


class PackFlowEntry(msgspec.Struct):
    id: str
    file: str
    entrypoints: list[str] = []
    """Names the flow can be started by (Greentic's flow entrypoints; recorded in `.gtpack`)."""
    tags: list[str] = []


class PackSourceManifest(msgspec.Struct):
    """The part of `pack.yaml` dev mode needs."""

    pack_id: str
    version: str = "0.0.0"
    flows: list[PackFlowEntry] = []
    components: list[ComponentManifest] = []
    """WebAssembly components: id, version, world, wasm (path), capabilities, operations."""
    kind: str = "application"
    """What the pack is (recorded in a `.gtpack` manifest)."""
    publisher: str = ""
    """Who publishes it (recorded in a `.gtpack` manifest)."""


class PackFlowSource(msgspec.Struct):
    id: str
    file: str
    source: str
    bindings: dict[str, str] = {}
    """node id → component id, from the flow's resolve sidecars (or the archive)."""


def read_dev_pack(directory: Path) -> tuple[PackSourceManifest, list[PackFlowSource]]:
    """Read `pack.yaml` (ours, or Greentic's as `greentic-pack build` reads it) and the flow
    files it lists (all of `flows/*.ygtc` when it lists none), with their sidecars' bindings."""
    manifest_path = directory / "pack.yaml"
    try:
        document = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
        if is_greentic_pack_yaml(document):
            manifest = _from_greentic(read_greentic_pack_yaml(document, directory), directory)
        else:
            manifest = msgspec.convert(document, PackSourceManifest)
    except OSError as exc:
        raise ConfigError(f"cannot read {manifest_path}: {exc.strerror}") from None
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{manifest_path}: {exc}") from None
    entries = manifest.flows or [PackFlowEntry(id=p.stem, file=str(p.relative_to(directory)))
                                 for p in sorted(directory.glob("flows/*.ygtc"))]
    wasm_files = {(directory / c.wasm).resolve(): c.id for c in manifest.components if c.wasm}
    flows = []
    for entry in entries:
        path = directory / entry.file
        try:
            source = path.read_text(encoding="utf-8")
            bindings = sidecar_bindings(path, wasm_files)
        except OSError as exc:
            raise ConfigError(f"{manifest_path}: flow {entry.id!r}: cannot read {path}: "
                              f"{exc.strerror}") from None
        except ValueError as exc:
            raise ConfigError(f"{manifest_path}: flow {entry.id!r}: {exc}") from None
        flows.append(PackFlowSource(entry.id, str(path), source, bindings))
    return manifest, flows


def _from_greentic(config: GreenticPackConfig, directory: Path) -> PackSourceManifest:
    components: dict[str, ComponentManifest] = {}
    for index, component in enumerate(config.components):
        if component.id not in components:  # packc keeps the first of a duplicated id
            components[component.id] = greentic_component(
                component, directory, f"{directory / 'pack.yaml'}: components[{index}] "
                f"({component.id})")
    return PackSourceManifest(
        pack_id=config.pack_id, version=config.version, kind=config.kind.lower(),
        publisher=config.publisher, components=list(components.values()),
        flows=[PackFlowEntry(id=f.id, file=f.file, entrypoints=list(f.entrypoints),
                             tags=list(f.tags)) for f in config.flows])


def dev_component_files(directory: Path,
                        manifest: PackSourceManifest) -> list[tuple[ComponentManifest, Path]]:
    """The file of every component the pack lists (`wasm` defaults to
    `components/<id>/component.wasm`); raises ConfigError naming a missing one."""
    found = []
    for component in manifest.components:
        path = directory / (component.wasm or f"components/{component.id}/component.wasm")
        try:
            if not path.is_file():
                raise FileNotFoundError(2, "No such file")
            found.append((component, path))
        except OSError as exc:
            raise ConfigError(f"{directory / 'pack.yaml'}: component {component.id!r}: cannot "
                              f"read {path}: {exc.strerror}") from None
    return found

"""`greentic pack build --format greentic`: a pack source directory (Greentic's pack.yaml or
ours) as the `.gtpack` Greentic's own `greentic-pack build` writes.

What goes in follows packc's `build.rs`: the components with their on-disk manifests, the
flows compiled, `pack.lock.cbor` as found, and the pack root's other files
(`collect_extra_dir_files`): a root file goes to `assets/<name>`, a folder keeps its path;
`components/`, `flows/`, `dist/`, `target/`, dot-folders and packc's reserved root files
(pack.yaml, pack.manifest.json, manifest.*, sbom.*, *.ygtc) are left out.
"""

from pathlib import Path

from greentic.errors import PackError
from greentic.flow.loader import load_flow
from greentic.pack.archive import pack_operations
from greentic.pack.devsource import read_dev_pack
from greentic.pack.greentic_format import (
    GreenticComponentInput,
    GreenticFlowInput,
    write_greentic_pack,
)
from greentic.pack.greentic_source import disk_manifest

SKIPPED_DIRS = frozenset({"components", "flows", "dist", "target"})
RESERVED_ROOT_FILES = frozenset({"pack.yaml", "pack.manifest.json", "pack.lock.cbor"})
OUR_NODE_WORLD = "greentic:component/component@0.6.0"
"""Our node world is Greentic's 0.6.0 (`wit/node`)."""


def _reserved(name: str) -> bool:
    return name in RESERVED_ROOT_FILES or name.endswith(".ygtc") or \
        name.startswith(("manifest.", "sbom.")) or name.startswith(".")


def _extra_files(directory: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(root files by name under assets/, other root folders' files by their path)."""
    assets: dict[str, bytes] = {}
    files: dict[str, bytes] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and not _reserved(path.name):
            assets[path.name] = path.read_bytes()
        elif path.is_dir() and path.name not in SKIPPED_DIRS and not path.name.startswith("."):
            for inner in sorted(path.rglob("*")):
                if inner.is_symlink():
                    raise PackError("symbolic link: a pack holds regular files only",
                                    entry=str(inner.relative_to(directory)))
                if inner.is_file():
                    files[inner.relative_to(directory).as_posix()] = inner.read_bytes()
    return assets, files


def build_greentic_pack(directory: Path) -> bytes:
    """The Greentic `.gtpack` of a pack source directory; raises GreenticError naming the
    file and field at fault."""
    source, flows = read_dev_pack(directory)
    components = []
    for component in source.components:
        if component.world != "node":
            raise PackError(f"component {component.id!r} is a {component.world} component, "
                            "which Greentic's runner does not host (node components only)",
                            entry=f"{directory / 'pack.yaml'}: components")
        wasm = directory / component.wasm
        manifest = disk_manifest(wasm, component.id, directory) or None
        components.append(GreenticComponentInput(
            id=component.id, version=component.version, wasm=wasm.read_bytes(),
            manifest=manifest, world=OUR_NODE_WORLD, supports=["messaging"]))
    ids = {flow.id for flow in flows}
    offered = pack_operations(source.components)
    flow_inputs = []
    listed = {entry.id: entry for entry in source.flows}
    for flow in flows:
        loaded = load_flow(flow.source, flow.file, pack_flows=ids, bindings=flow.bindings,
                           components=offered)
        entry = listed.get(flow.id)
        flow_inputs.append(GreenticFlowInput(
            id=flow.id, source=flow.source, components=dict(loaded.bindings),
            entrypoints=list(entry.entrypoints) if entry else [],
            tags=list(entry.tags) if entry else []))
    assets, files = _extra_files(directory)
    lock = directory / "pack.lock.cbor"
    return write_greentic_pack(
        pack_id=source.pack_id, version=source.version, kind=source.kind,
        publisher=source.publisher, flows=flow_inputs, components=components, assets=assets,
        files=files, pack_lock=lock.read_bytes() if lock.is_file() else None)

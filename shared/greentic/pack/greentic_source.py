"""Greentic's own `pack.yaml` (what `greentic-pack build` reads), turned into our pack source.

Followed: greentic-pack `crates/packc/src/config.rs` (`PackConfig`, `ComponentConfig`,
`FlowConfig`: unknown keys are ignored at every level) and `build.rs` (a component's on-disk
manifest — `component.manifest.json`, `<id>.manifest.json`, … beside its wasm, walking up —
wins over pack.yaml's world and capabilities; `wasm` may name a directory holding one
`*.component.wasm` or one `*.wasm`).
"""

import json
from pathlib import Path
from typing import Any

import msgspec

from greentic.errors import ConfigError
from greentic.types.component import ComponentCapabilities, ComponentManifest, World

# the keys only Greentic's pack.yaml has (ours never does)
GREENTIC_TOP_KEYS = frozenset({"dependencies", "extensions", "bootstrap", "name"})
GREENTIC_COMPONENT_KEYS = frozenset({"profiles", "supports", "configurators", "resources"})
PACK_KINDS = frozenset({"application", "provider", "infrastructure", "library"})


class GreenticFlowConfig(msgspec.Struct):
    id: str
    file: str
    tags: list[str] = []
    entrypoints: list[str] = []


class GreenticComponentConfig(msgspec.Struct):
    id: str
    version: str
    world: str
    wasm: str
    profiles: dict[str, Any]
    capabilities: dict[str, Any]
    supports: list[str] = []
    operations: list[dict[str, Any]] = []


class GreenticPackConfig(msgspec.Struct):
    pack_id: str
    version: str
    kind: str
    publisher: str
    components: list[GreenticComponentConfig] = []
    flows: list[GreenticFlowConfig] = []


def is_greentic_pack_yaml(document: Any) -> bool:
    """True for a pack.yaml written for Greentic's toolchain rather than ours."""
    if not isinstance(document, dict):
        return False
    components = document.get("components") or []
    return bool(GREENTIC_TOP_KEYS & set(document)) or any(
        isinstance(c, dict) and (GREENTIC_COMPONENT_KEYS & set(c) or
                                 (isinstance(c.get("capabilities"), dict) and
                                 "wasi" in c["capabilities"])) for c in components)


def hosted_world(world: str) -> World | None:
    """Our world for a Greentic WIT world name: node components and MCP routers."""
    if world.startswith(("greentic:component/component", "root:component/")):
        return "node"
    if world.startswith("wasix:mcp"):
        return "mcp"
    return None


def component_wasm(directory: Path, wasm: str, where: str) -> Path:
    """The component file `wasm` names: a file, or a directory with one (`*.component.wasm`
    preferred, as packc's `resolve_component_wasm_path`)."""
    path = directory / wasm
    if path.is_dir():
        for pattern in ("*.component.wasm", "*.wasm"):
            found = sorted(path.glob(pattern))
            if len(found) == 1:
                return found[0]
        raise ConfigError(f"{where}: {path} holds no single component .wasm")
    if not path.is_file():
        raise ConfigError(f"{where}: cannot read {path}: no such file")
    return path


def disk_manifest(wasm: Path, component_id: str, root: Path) -> dict[str, Any]:
    """The component's own manifest beside its wasm (or in a folder above, up to the pack)."""
    names = ("component.manifest.json", "component.json", f"{component_id}.manifest.json",
             f"{component_id}.json")
    folder = wasm.parent
    while True:
        for name in names:
            candidate = folder / name
            if candidate.is_file():
                try:
                    found = json.loads(candidate.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"{candidate}: not a readable JSON manifest: {exc}") \
                        from None
                return found if isinstance(found, dict) else {}
        if folder == root or root not in folder.parents:
            return {}
        folder = folder.parent


def _grants(capabilities: dict[str, Any]) -> ComponentCapabilities:
    """Greentic's `capabilities.host` as our grants: secrets (with their keys), state, http,
    telemetry → log."""
    host = capabilities.get("host") if isinstance(capabilities.get("host"), dict) else {}
    granted: list[str] = []
    secrets = [str(s["key"]) for s in (host.get("secrets") or {}).get("required", [])
               if isinstance(s, dict) and s.get("key")]
    if secrets:
        granted.append("secrets")
    state = host.get("state")
    if isinstance(state, dict) and (state.get("read") or state.get("write")):
        granted.append("state")
    http = host.get("http")
    if isinstance(http, dict) and http.get("client"):
        granted.append("http")
    if host.get("telemetry"):
        granted.append("log")
    return msgspec.convert({"host": granted, "secrets": secrets}, ComponentCapabilities)


def greentic_component(config: GreenticComponentConfig, directory: Path,
                       where: str) -> ComponentManifest:
    """Our manifest of one Greentic component (its on-disk manifest first, as packc)."""
    wasm = component_wasm(directory, config.wasm, where)
    disk = disk_manifest(wasm, config.id, directory)
    world_name = str(disk.get("world") or config.world)
    world = hosted_world(world_name)
    if world is None:
        raise ConfigError(f"{where}: world {world_name!r} is not hosted here (node components "
                          "greentic:component/… and wasix:mcp are)")
    operations = [str(o["name"]) for o in disk.get("operations") or config.operations
                  if isinstance(o, dict) and o.get("name")]
    capabilities = disk.get("capabilities") if isinstance(disk.get("capabilities"), dict) \
        else config.capabilities
    return ComponentManifest(
        id=config.id, version=config.version, world=world,
        wasm=str(wasm.relative_to(directory)), capabilities=_grants(capabilities),
        operations=operations, default_operation=str(disk.get("default_operation") or ""))


def read_greentic_pack_yaml(document: Any, directory: Path) -> GreenticPackConfig:
    """Greentic's pack.yaml checked as packc checks it; raises ConfigError naming the field."""
    where = directory / "pack.yaml"
    try:
        config = msgspec.convert(document, GreenticPackConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where} (Greentic's pack.yaml): {exc}") from None
    if config.kind.lower() not in PACK_KINDS:
        raise ConfigError(f"{where}: kind {config.kind!r} is not one of {sorted(PACK_KINDS)}")
    return config

"""Greentic's `manifest.cbor`, both generations, decoded into Structs.

**Current layout**: greentic-types' `PackManifest` as its `encode_pack_manifest` writes it
(greentic-types v0.4.55 `src/cbor/mod.rs`, `EncodedPackManifest`; v0.4.55 is what greentic-pack's
Cargo.lock pins): fields `schema_version` ("pack-v1"), `pack_id`, `name`?, `version`, `kind`,
`publisher`, `symbols`, `components`, `flows`, `dependencies`, `capabilities`,
`secret_requirements`?, `signatures`, `bootstrap`?, `extensions`? (and `agents`? since v1.x).
Identifiers are interned in `symbols: {component_ids, node_ids, capability_names, pack_ids}`
(each sorted, deduplicated) and referred to by index: `pack_id`, `components[].id`,
`flows[].flow.nodes[].id`, `…nodes[].component.id`, routing targets (`{"Next": {node_id}}`,
`{"Branch": {on_status, default}}`, or `"End"`/`"Reply"`/`{"Custom": …}`),
`dependencies[].pack_id`/`required_capabilities[]`, `capabilities[].name`.
`resolve_symbols` turns that back into `PackManifest`'s serde shape, as greentic-types'
`TryFrom<EncodedPackManifest>` does.

**Legacy layout**: greentic-pack's own `PackManifest` (`crates/greentic-pack/src/builder.rs`):
`{meta: {pack_id, version, name, kind?, authors, entry_flows, …}, flows: [{id, kind, entry,
file_yaml, file_json, hash_blake3}], components: [{name, version, file_wasm, hash_blake3, world,
…}]}`, the same data again in `manifest.json`.
"""

from typing import Any

import msgspec

from greentic.errors import PackError
from greentic.pack.greentic_format.cbor import decode_cbor

MANIFEST_ENTRY = "manifest.cbor"
MANIFEST_JSON_ENTRY = "manifest.json"
COMPONENT_MANIFESTS_EXTENSION = "greentic.pack.component_manifests@v1"
ROUTING = {"Next": "next", "Branch": "branch", "End": "end", "Reply": "reply", "Custom": "custom"}


# --- current layout (greentic-types PackManifest) -------------------------------------------

class Operation(msgspec.Struct, frozen=True):
    name: str


class Component(msgspec.Struct, frozen=True):
    """A component's manifest inside the pack manifest (greentic-types `ComponentManifest`)."""

    id: str
    version: str
    world: str
    supports: list[str] = []
    operations: list[Operation] = []


class NodeComponent(msgspec.Struct, frozen=True):
    id: str
    pack_alias: str | None = None
    operation: str | None = None


class Node(msgspec.Struct, frozen=True):
    id: str
    component: NodeComponent
    routing: Any = None


class Flow(msgspec.Struct, frozen=True):
    id: str
    kind: str
    entrypoints: dict[str, Any] = {}
    nodes: dict[str, Node] = {}


class FlowEntry(msgspec.Struct, frozen=True):
    id: str
    kind: str
    flow: Flow
    tags: list[str] = []
    entrypoints: list[str] = []


class Dependency(msgspec.Struct, frozen=True):
    alias: str
    pack_id: str
    version_req: str
    required_capabilities: list[str] = []


class Capability(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None


class ManifestSignature(msgspec.Struct, frozen=True):
    """greentic-types `Signature`: `signature` is base64 (serde_with `Base64`)."""

    key_id: str
    algorithm: Any
    signature: str


class Signatures(msgspec.Struct, frozen=True):
    signatures: list[ManifestSignature] = []


class Extension(msgspec.Struct, frozen=True):
    kind: str
    version: str
    digest: str | None = None
    location: str | None = None
    inline: Any = None


class ManifestIndexEntry(msgspec.Struct, frozen=True):
    """greentic-types `ComponentManifestIndexEntryV1`."""

    component_id: str
    manifest_file: str
    encoding: str
    content_hash: str | None = None


class ManifestIndex(msgspec.Struct, frozen=True):
    schema_version: int
    entries: list[ManifestIndexEntry] = []


class CurrentManifest(msgspec.Struct, frozen=True):
    """A current-layout `manifest.cbor` with its symbols resolved."""

    schema_version: str
    pack_id: str
    version: str
    kind: str
    publisher: str
    name: str | None = None
    components: list[Component] = []
    flows: list[FlowEntry] = []
    dependencies: list[Dependency] = []
    capabilities: list[Capability] = []
    signatures: Signatures = Signatures()
    extensions: dict[str, Extension] | None = None

    def component_manifest_index(self) -> list[ManifestIndexEntry]:
        """The `greentic.pack.component_manifests@v1` extension's entries (none if absent)."""
        extension = (self.extensions or {}).get(COMPONENT_MANIFESTS_EXTENSION)
        if extension is None:
            return []
        try:
            return msgspec.convert(extension.inline, type=ManifestIndex).entries
        except msgspec.ValidationError as exc:
            raise PackError(f"extension {COMPONENT_MANIFESTS_EXTENSION}: {exc}",
                            entry=MANIFEST_ENTRY) from None


class _Symbols:
    """Index lookups into `symbols`, refusing an index out of range with its place named."""

    def __init__(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise PackError("no `symbols` table", entry=MANIFEST_ENTRY)
        self.tables = raw

    def name(self, table: str, index: Any, where: str) -> str:
        values = self.tables.get(table)
        if isinstance(index, str) and table == "pack_ids":
            return index  # greentic-types `PackIdRef::Legacy`: a pack id written out
        if (not isinstance(values, list) or not isinstance(index, int) or isinstance(index, bool)
                or not 0 <= index < len(values) or not isinstance(values[index], str)):
            size = len(values) if isinstance(values, list) else 0
            raise PackError(f"{where}: index {index!r} is not in symbols.{table} "
                            f"({size} entries)", entry=MANIFEST_ENTRY)
        return values[index]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PackError(f"{where}: expected a map", entry=MANIFEST_ENTRY)
    return value


def _sequence(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PackError(f"{where}: expected an array", entry=MANIFEST_ENTRY)
    return value


def _routing(raw: Any, symbols: _Symbols, where: str) -> Any:
    """`EncodedRouting` to `Routing`'s serde shape (`"end"`, `{"next": {"node_id": …}}`…)."""
    if isinstance(raw, str) and raw in ("End", "Reply"):
        return ROUTING[raw]
    variant = next(iter(raw), None) if isinstance(raw, dict) and len(raw) == 1 else None
    if variant == "Next":
        body = _mapping(raw[variant], where)
        return {"next": {"node_id": symbols.name("node_ids", body.get("node_id"), where)}}
    if variant == "Branch":
        body = _mapping(raw[variant], where)
        on_status = {status: symbols.name("node_ids", index, f"{where}.on_status.{status}")
                     for status, index in _mapping(body.get("on_status", {}), where).items()}
        branch: dict[str, Any] = {"on_status": on_status}
        if body.get("default") is not None:
            branch["default"] = symbols.name("node_ids", body["default"], f"{where}.default")
        return {"branch": branch}
    if variant == "Custom":
        return {"custom": raw[variant]}
    raise PackError(f"{where}: unknown routing {raw!r}", entry=MANIFEST_ENTRY)


def _flow(raw: Any, symbols: _Symbols, where: str) -> dict[str, Any]:
    flow = dict(_mapping(raw, where))
    nodes = {}
    for index, encoded in enumerate(_sequence(flow.get("nodes"), f"{where}.nodes")):
        place = f"{where}.nodes[{index}]"
        node = dict(_mapping(encoded, place))
        node_id = symbols.name("node_ids", node.get("id"), f"{place}.id")
        component = dict(_mapping(node.get("component"), f"{place}.component"))
        component["id"] = symbols.name("component_ids", component.get("id"),
                                       f"{place}.component.id")
        node.update(id=node_id, component=component,
                    routing=_routing(node.get("routing"), symbols, f"{place}.routing"))
        nodes[node_id] = node
    flow["nodes"] = nodes
    return flow


def resolve_symbols(raw: Any) -> dict[str, Any]:
    """A decoded current-layout manifest with every symbol index replaced by its name: the
    serde shape of greentic-types' `PackManifest` (flows' `nodes` a map by node id)."""
    manifest = dict(_mapping(raw, "manifest"))
    symbols = _Symbols(manifest.pop("symbols", None))
    manifest["pack_id"] = symbols.name("pack_ids", manifest.get("pack_id"), "pack_id")
    manifest["components"] = [
        {**_mapping(component, f"components[{i}]"),
         "id": symbols.name("component_ids", component.get("id"), f"components[{i}].id")}
        for i, component in enumerate(_sequence(manifest.get("components"), "components"))]
    manifest["flows"] = [
        {**_mapping(entry, f"flows[{i}]"),
         "flow": _flow(entry.get("flow"), symbols, f"flows[{i}].flow")}
        for i, entry in enumerate(_sequence(manifest.get("flows"), "flows"))]
    manifest["dependencies"] = [
        {**_mapping(dep, f"dependencies[{i}]"),
         "pack_id": symbols.name("pack_ids", dep.get("pack_id"), f"dependencies[{i}].pack_id"),
         "required_capabilities": [
             symbols.name("capability_names", cap, f"dependencies[{i}].required_capabilities")
             for cap in _sequence(dep.get("required_capabilities"), "required_capabilities")]}
        for i, dep in enumerate(_sequence(manifest.get("dependencies"), "dependencies"))]
    manifest["capabilities"] = [
        {**_mapping(cap, f"capabilities[{i}]"),
         "name": symbols.name("capability_names", cap.get("name"), f"capabilities[{i}].name")}
        for i, cap in enumerate(_sequence(manifest.get("capabilities"), "capabilities"))]
    return manifest


def decode_current_manifest(data: bytes) -> CurrentManifest:
    """A current-layout `manifest.cbor`; PackError names the field at fault."""
    resolved = resolve_symbols(decode_cbor(data, MANIFEST_ENTRY))
    try:
        return msgspec.convert(resolved, type=CurrentManifest)
    except msgspec.ValidationError as exc:
        raise PackError(f"not a Greentic pack manifest: {exc}", entry=MANIFEST_ENTRY) from None


# --- legacy layout (greentic-pack builder.rs PackManifest) ----------------------------------

class LegacyMeta(msgspec.Struct, frozen=True):
    pack_id: str
    version: str
    name: str
    entry_flows: list[str]
    kind: str | None = None
    authors: list[str] = []
    vendor: str | None = None
    description: str | None = None


class LegacyFlow(msgspec.Struct, frozen=True):
    id: str
    kind: str
    entry: str
    file_yaml: str
    file_json: str
    hash_blake3: str


class LegacyComponent(msgspec.Struct, frozen=True):
    name: str
    version: str
    file_wasm: str
    hash_blake3: str
    world: str | None = None
    schema_file: str | None = None
    manifest_file: str | None = None


class LegacyManifest(msgspec.Struct, frozen=True):
    meta: LegacyMeta
    flows: list[LegacyFlow]
    components: list[LegacyComponent]


def decode_legacy_manifest(entries: dict[str, bytes]) -> LegacyManifest:
    """A legacy-layout `manifest.cbor`, refused when `manifest.json` says something else."""
    raw = decode_cbor(entries[MANIFEST_ENTRY], MANIFEST_ENTRY)
    try:
        manifest = msgspec.convert(raw, type=LegacyManifest)
    except msgspec.ValidationError as exc:
        raise PackError(f"not a Greentic (legacy) pack manifest: {exc}",
                        entry=MANIFEST_ENTRY) from None
    if MANIFEST_JSON_ENTRY in entries:
        try:
            as_json = msgspec.json.decode(entries[MANIFEST_JSON_ENTRY])
        except msgspec.DecodeError as exc:
            raise PackError(f"unreadable JSON: {exc}", entry=MANIFEST_JSON_ENTRY) from None
        if as_json != raw:
            raise PackError("differs from manifest.cbor (a reader of either would see another "
                            "pack)", entry=MANIFEST_JSON_ENTRY)
    return manifest

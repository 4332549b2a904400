"""Writing a Greentic `.gtpack` of the current layout, as Greentic's packc builds one.

Layout and order as greentic-pack `crates/packc/src/build.rs` `package_gtpack` writes them (its
prod mode; `dev=True` adds the flow sources as its `--dev` does): `manifest.cbor` first, then
(dev) `flows/<id>/flow.json` + `flow.ygtc`, then per component in id order
`components/<id>.wasm` and `components/<id>.manifest.cbor`, then `assets/…` and
`pack.lock.cbor` in path order, `sbom.cbor` last; every entry stored, mode 0644, dated
1980-01-01, "version 1.0" headers (the `zip` crate's defaults). The manifest is
`encode_pack_manifest` of the `PackManifest` packc's `assemble_manifest` builds (schema
"pack-v1", capabilities derived by `derive_pack_capabilities`, the `greentic.pack-mode.v1` and
`greentic.pack.component_manifests@v1` extensions), each component manifest its canonical CBOR
with a `sha256:` content hash, and `sbom.cbor` the canonical CBOR of every entry's BLAKE3.
"""

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from greentic.errors import PackError
from greentic.pack.archive import check_entry_name
from greentic.pack.greentic_format.cbor import encode_canonical_cbor, encode_cbor
from greentic.pack.greentic_format.component import (
    IDENTIFIER,
    minimal_component_manifest,
    normalize_component_manifest,
)
from greentic.pack.greentic_format.entries import read_entries
from greentic.pack.greentic_format.flow import compile_flow
from greentic.pack.greentic_format.manifest import COMPONENT_MANIFESTS_EXTENSION, MANIFEST_ENTRY
from greentic.pack.greentic_format.sbom import SBOM_FORMAT, UNLISTED, blake3_hex, read_sbom
from greentic.pack.greentic_format.signature import make_signature_entries
from greentic.pack.manifest import SEMVER

PACK_KINDS = ("application", "provider", "infrastructure", "library")
BUILD_MODE_EXTENSION = "greentic.pack-mode.v1"
ZIP_VERSION = 10  # the zip crate's "version made by / needed" for stored entries
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class GreenticFlowInput(msgspec.Struct, frozen=True, kw_only=True):
    """One flow of the pack, as pack.yaml's `flows:` names it."""

    id: str
    """The flow's id; must be the `id:` inside `source`."""
    source: str
    """The `.ygtc` text."""
    entrypoints: list[str] = []
    """Default: the compiled flow's entrypoint names (`default` = its start node)."""
    tags: list[str] = []
    components: dict[str, str] = {}
    """Node id → component id, as the flow's `.resolve.summary.json` maps them (needed only for
    nodes whose operation names no component)."""


class GreenticComponentInput(msgspec.Struct, frozen=True, kw_only=True):
    """One component bundled in the pack."""

    id: str
    version: str
    wasm: bytes
    manifest: dict[str, Any] | None = None
    """The decoded `component.manifest.json`; when given its world, capabilities and
    operations are what the pack records (as packc does), and its id/version must match."""
    world: str = ""
    """Used only without `manifest`."""
    supports: list[str] = []
    """Used only without `manifest` (flow kinds: messaging, event, …)."""


def _check(value: str, kind: str) -> str:
    if not IDENTIFIER.match(value):
        raise PackError(f"{kind} {value!r}: ASCII letters, digits, '.', '-' and '_' only")
    return value


def _component_manifest(component: GreenticComponentInput) -> dict[str, Any]:
    where = f"components/{component.id}"
    if component.manifest is None:
        if not component.world:
            raise PackError("a component without a manifest needs its world", entry=where)
        return minimal_component_manifest(component.id, component.version, component.world,
                                          tuple(component.supports))
    manifest = normalize_component_manifest(component.manifest, f"{where} manifest")
    for field in ("id", "version"):
        if manifest[field] != getattr(component, field):
            raise PackError(f"its manifest's {field} is {manifest[field]!r}, the pack says "
                            f"{getattr(component, field)!r}", entry=where)
    return manifest


def derive_capabilities(components: list[dict[str, Any]]) -> list[str]:
    """packc `derive_pack_capabilities`: the host and WASI grants components ask for, in the
    order first asked."""
    names: list[str] = []
    for component in components:
        host, wasi = component["capabilities"]["host"], component["capabilities"]["wasi"]
        wanted = ["host:secrets"] if "secrets" in host else []
        state = host.get("state") or {}
        wanted += [name for name, on in (("host:state:read", state.get("read")),
                                         ("host:state:write", state.get("write"))) if on]
        wanted += [f"host:{name}" for name in ("messaging", "events", "http", "telemetry", "iac")
                   if name in host]
        if "filesystem" in wasi:
            wanted.append("wasi:fs:" + wasi["filesystem"]["mode"].replace("_", ""))
            if wasi["filesystem"]["mounts"]:
                wanted.append("wasi:fs:mounts")
        wanted += [f"wasi:{name}" for name in ("random", "clocks") if wasi[name]]
        names += [name for name in wanted if name not in names]
    return names


def _routing(routing: Any, nodes: dict[str, int]) -> Any:
    """`Routing` → greentic-types `EncodedRouting` (variant names as declared)."""
    if routing in ("end", "reply"):
        return routing.capitalize()
    (variant, body), = routing.items()
    if variant == "next":
        return {"Next": {"node_id": nodes[body["node_id"]]}}
    if variant == "branch":
        return {"Branch": {"on_status": {k: nodes[v] for k, v in body["on_status"].items()},
                           "default": nodes[body["default"]] if "default" in body else None}}
    return {"Custom": body}


def _encoded_flow(entry: dict[str, Any], symbols: dict[str, dict[str, int]]) -> dict[str, Any]:
    flow = entry["flow"]
    nodes = [{"id": symbols["node_ids"][node_id],
              "component": {"id": symbols["component_ids"][node["component"]["id"]],
                            "pack_alias": node["component"].get("pack_alias"),
                            "operation": node["component"].get("operation")},
              "input": node["input"], "output": node["output"],
              "routing": _routing(node["routing"], symbols["node_ids"]),
              "telemetry": node["telemetry"]} for node_id, node in flow["nodes"].items()]
    return {"id": entry["id"], "kind": entry["kind"],
            "flow": {"schema_version": flow["schema_version"], "id": flow["id"],
                     "kind": flow["kind"], "entrypoints": flow["entrypoints"], "nodes": nodes,
                     "metadata": flow["metadata"]},
            "tags": entry["tags"], "entrypoints": entry["entrypoints"]}


def _index(values: set[str]) -> tuple[list[str], dict[str, int]]:
    ordered = sorted(values)
    return ordered, {value: index for index, value in enumerate(ordered)}


def encode_manifest(*, pack_id: str, version: str, kind: str, publisher: str,
                    name: str | None, components: list[dict[str, Any]],
                    flows: list[dict[str, Any]], extensions: dict[str, Any]) -> bytes:
    """greentic-types `encode_pack_manifest` of a `PackManifest` (components and flows in its
    serde shape), with the identifiers interned in `symbols` (greentic-types `src/cbor/mod.rs`
    `build_symbol_tables`: each table sorted and deduplicated)."""
    capabilities = derive_capabilities(components)
    tables = {
        "component_ids": _index({c["id"] for c in components} | {
            node["component"]["id"] for f in flows for node in f["flow"]["nodes"].values()}),
        "node_ids": _index({node_id for f in flows for node_id in f["flow"]["nodes"]}),
        "capability_names": _index(set(capabilities)),
        "pack_ids": _index({pack_id}),
    }
    symbols = {table: index for table, (_, index) in tables.items()}
    manifest: dict[str, Any] = {"schema_version": "pack-v1",
                                "pack_id": symbols["pack_ids"][pack_id]}
    if name is not None:
        manifest["name"] = name
    manifest.update(version=version, kind=kind, publisher=publisher,
                    symbols={table: values for table, (values, _) in tables.items()})
    manifest["components"] = [
        {"id": symbols["component_ids"][c["id"]], "version": c["version"],
         "supports": c["supports"], "world": c["world"], "profiles": c["profiles"],
         "capabilities": c["capabilities"], "configurators": c.get("configurators"),
         "operations": c["operations"], "config_schema": c.get("config_schema"),
         "resources": c["resources"], "dev_flows": c.get("dev_flows", {})}
        for c in components]
    manifest["flows"] = [_encoded_flow(flow, symbols) for flow in flows]
    manifest["dependencies"] = []
    manifest["capabilities"] = [{"name": symbols["capability_names"][cap], "description": None}
                                for cap in capabilities]
    manifest["signatures"] = {"signatures": []}
    if extensions:
        manifest["extensions"] = dict(sorted(extensions.items()))
    return encode_cbor(manifest)


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.create_version = info.extract_version = ZIP_VERSION
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _flow_json(flow: dict[str, Any]) -> bytes:
    """packc's dev-mode `flows/<id>/flow.json`: `serde_json::to_vec(&flow)`."""
    nodes = {node_id: {**node, "component": {k: v for k, v in node["component"].items()
                                             if v is not None}}
             for node_id, node in flow["nodes"].items()}
    return json.dumps({**flow, "nodes": nodes}, ensure_ascii=False,
                      separators=(",", ":")).encode()


def _compile_flows(flows: Sequence[GreenticFlowInput]
                   ) -> tuple[list[dict[str, Any]], list[tuple[str, bytes]]]:
    """packc `build_flows`: each flow's `PackFlowEntry`, and its dev-mode files."""
    entries: list[dict[str, Any]] = []
    files: list[tuple[str, bytes]] = []
    for flow in flows:
        where = f"flows/{flow.id}"
        compiled = compile_flow(flow.source, file=where, resolved=flow.components)
        if compiled["id"] != flow.id:
            raise PackError(f"the flow's own id is {compiled['id']!r}", entry=where)
        if any(entry["id"] == flow.id for entry in entries):
            raise PackError("two flows with this id", entry=where)
        entries.append({"id": flow.id, "kind": compiled["kind"], "flow": compiled,
                        "tags": list(flow.tags),
                        "entrypoints": list(flow.entrypoints or compiled["entrypoints"])})
        files += [(f"{where}/flow.json", _flow_json(compiled)),
                  (f"{where}/flow.ygtc", flow.source.encode())]
    return entries, sorted(files)


def _extensions(dev: bool, manifest_files: dict[str, bytes]) -> dict[str, Any]:
    """packc `annotate_manifest_build_mode` and `merge_component_manifest_extension`."""
    extensions: dict[str, Any] = {BUILD_MODE_EXTENSION: {
        "kind": BUILD_MODE_EXTENSION, "version": "1",
        "inline": {"mode": "dev" if dev else "prod"}}}
    if manifest_files:
        extensions[COMPONENT_MANIFESTS_EXTENSION] = {
            "kind": COMPONENT_MANIFESTS_EXTENSION, "version": "v1",
            "inline": {"entries": [
                {"component_id": cid, "content_hash": "sha256:" + hashlib.sha256(data).hexdigest(),
                 "encoding": "cbor", "manifest_file": f"components/{cid}.manifest.cbor"}
                for cid, data in manifest_files.items()], "schema_version": 1}}
    return extensions


def write_greentic_pack(*, pack_id: str, version: str, flows: Sequence[GreenticFlowInput],
                        components: Sequence[GreenticComponentInput] = (),
                        kind: str = "application", publisher: str = "", name: str | None = None,
                        assets: dict[str, bytes] | None = None, pack_lock: bytes | None = None,
                        files: dict[str, bytes] | None = None, dev: bool = False) -> bytes:
    """A Greentic current-layout `.gtpack` (unsigned, as packc writes them). `assets` are
    keyed by their path under `assets/`, `files` (the pack root's other folders, as packc's
    `collect_extra_dir_files` bundles them) by their own path; `pack_lock` is written as
    `pack.lock.cbor` as given;
    `dev` adds the flow sources and marks the pack `dev`, as `packc build --dev`."""
    _check(pack_id, "pack id")
    if not SEMVER.match(version):
        raise PackError(f"pack version {version!r} is not a semantic version")
    if kind.lower() not in PACK_KINDS:
        raise PackError(f"pack kind {kind!r}: one of {', '.join(PACK_KINDS)}")
    pack_flows, flow_files = _compile_flows(flows)
    bundled = sorted(components, key=lambda component: component.id)
    manifests: dict[str, dict[str, Any]] = {}
    for component in bundled:
        if component.id in manifests:
            raise PackError("two components with this id", entry=f"components/{component.id}")
        manifests[_check(component.id, "component id")] = _component_manifest(component)
    manifest_files = {cid: encode_canonical_cbor(m) for cid, m in manifests.items()}
    entries = [(MANIFEST_ENTRY, encode_manifest(
        pack_id=pack_id, version=version, kind=kind.lower(), publisher=publisher, name=name,
        components=list(manifests.values()), flows=pack_flows,
        extensions=_extensions(dev, manifest_files)))]
    entries += flow_files if dev else []
    for component in bundled:
        entries += [(f"components/{component.id}.wasm", component.wasm),
                    (f"components/{component.id}.manifest.cbor", manifest_files[component.id])]
    extra = [(f"assets/{path}", data) for path, data in (assets or {}).items()]
    extra += list((files or {}).items())
    entries += sorted(extra + ([("pack.lock.cbor", pack_lock)] if pack_lock is not None else []))
    for path, _ in entries:
        check_entry_name(path)
    if len({path for path, _ in entries}) != len(entries):
        raise PackError("two entries with the same path (an asset named like another entry?)")
    return seal_greentic_entries(dict(entries))


def _media_type(path: str) -> str:
    """The media type packc's `package_gtpack` records for an entry at `path`."""
    if path.startswith(("components/", "flows/")) or path == MANIFEST_ENTRY:
        for suffix, media in ((".wasm", "application/wasm"), (".cbor", "application/cbor"),
                              (".json", "application/json"), (".ygtc", "application/yaml")):
            if path.endswith(suffix):
                return media
    return "application/octet-stream"  # assets/…, pack.lock.cbor and other extra files


def seal_greentic_entries(entries: dict[str, bytes]) -> bytes:
    """The archive of `entries` (in their order) with a fresh `sbom.cbor` last: the canonical
    CBOR of every entry's path, size, BLAKE3 and media type, in path order."""
    files = [{"path": path, "size": len(data), "hash_blake3": blake3_hex(data),
              "media_type": _media_type(path)}
             for path, data in entries.items() if path not in UNLISTED]
    sbom = encode_canonical_cbor({"format": SBOM_FORMAT,
                                  "files": sorted(files, key=lambda e: e["path"].encode())})
    return _zip([*((p, d) for p, d in entries.items() if p != "sbom.cbor"), ("sbom.cbor", sbom)])


def sign_greentic_pack(data: bytes, key: Ed25519PrivateKey, chain_pem: bytes) -> bytes:
    """`data` with `signatures/pack.sig` + `signatures/chain.pem` added (replacing any), as
    greentic-pack's `Signing::External` signs; `key` is the chain's leaf key."""
    entries = read_entries(data)
    for name in ("signatures/pack.sig", "signatures/chain.pem"):
        entries.pop(name, None)
    sbom_name, sbom = read_sbom(entries)
    entries.update(make_signature_entries(entries, sbom_name, sbom, key, chain_pem))
    return _zip(list(entries.items()))

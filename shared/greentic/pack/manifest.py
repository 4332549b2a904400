"""`manifest.cbor`: what a `.gtpack` holds, as canonical CBOR (RFC 8949 §4.2.1, via cbor2).

The manifest is schema-checked strictly (unknown fields are refused): it is signed data that
decides what components run with which grants, so a field this reader does not understand
must not be silently dropped. A new field means a new `format`.
"""

import re
from typing import Annotated, Any

import cbor2
import msgspec

from greentic.errors import PackError
from greentic.types.component import ComponentCapabilities, ComponentManifest, World

FORMAT = 1
MANIFEST_ENTRY = "manifest.cbor"

# semver.org's regular expression (2.0.0)
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$", max_length=128)]
ComponentId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
                                          max_length=128)]
"""Ours, or Greentic's dotted ids (`ai.greentic.component-echo`)."""
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class PackComponent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True,
                    omit_defaults=True):
    """One component: what the runtime grants it, and the digest of its bytes."""

    id: ComponentId
    version: str
    world: World
    capabilities: ComponentCapabilities
    operations: list[str]
    file: str
    """`components/<id>@<version>/component.wasm`."""
    sha256: Sha256
    size: int
    default_operation: str = ""

    def runtime_manifest(self) -> ComponentManifest:
        """The manifest the executor's component host enforces."""
        return ComponentManifest(id=self.id, version=self.version, world=self.world,
                                 wasm=self.file, capabilities=self.capabilities,
                                 operations=list(self.operations),
                                 default_operation=self.default_operation)


class PackFlow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    id: Name
    file: str
    """`flows/<id>/flow.ygtc`."""
    entrypoints: list[str]
    tags: list[str]
    components: list[str]
    """Component ids the flow calls (checked against `components` when building and reading)."""
    bindings: dict[str, str] = {}
    """node id → component, for nodes that call a component by name (what the flow's
    sidecars and the pack's components resolved when it was built)."""


class PackManifest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: int
    pack_id: Name
    version: str
    kind: str
    publisher: str
    components: list[PackComponent]
    flows: list[PackFlow]
    assets: list[str]


def check_version(version: str, field: str = "version") -> str:
    """`version` if it is semver (2.0.0), else a PackError naming `field`."""
    if not SEMVER.match(version):
        raise PackError(f"{version!r} is not a semantic version (e.g. 1.2.3)", entry=field)
    return version


def encode_manifest(manifest: PackManifest) -> bytes:
    """Canonical CBOR: shortest integer forms, definite lengths, map keys sorted."""
    return cbor2.dumps(msgspec.to_builtins(manifest), canonical=True)


def decode_manifest(data: bytes) -> PackManifest:
    """Decode and check `manifest.cbor`; a PackError names the field at fault."""
    try:
        raw: Any = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise PackError(f"not CBOR: {exc}", entry=MANIFEST_ENTRY) from None
    try:
        canonical = cbor2.dumps(raw, canonical=True)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise PackError(f"cannot be re-encoded: {exc}", entry=MANIFEST_ENTRY) from None
    if canonical != data:
        raise PackError("not canonical CBOR (RFC 8949 §4.2.1: sorted keys, shortest forms, "
                        "definite lengths); rebuild the pack", entry=MANIFEST_ENTRY)
    if isinstance(raw, dict) and raw.get("format") not in (None, FORMAT):
        raise PackError(f"format {raw.get('format')!r} is not supported (this reader: "
                        f"{FORMAT})", entry=f"{MANIFEST_ENTRY}:format")
    try:
        manifest = msgspec.convert(raw, PackManifest)
    except msgspec.ValidationError as exc:
        raise PackError(f"wrong schema: {exc}", entry=MANIFEST_ENTRY) from None
    check_version(manifest.version, f"{MANIFEST_ENTRY}:version")
    for index, component in enumerate(manifest.components):
        check_version(component.version, f"{MANIFEST_ENTRY}:components[{index}].version")
    check_references(manifest)
    return manifest


def check_references(manifest: PackManifest) -> None:
    """Every flow calls only components the pack has; ids are unique."""
    for what, ids in (("component", [c.id for c in manifest.components]),
                      ("flow", [f.id for f in manifest.flows])):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise PackError(f"{what} ids listed twice: {duplicates}",
                            entry=f"{MANIFEST_ENTRY}:{what}s")
    known = {c.id for c in manifest.components}
    for flow in manifest.flows:
        missing = sorted(set(flow.components) - known)
        if missing:
            raise PackError(f"flow {flow.id!r} calls component(s) {missing}, which the pack "
                            f"does not contain (components: {sorted(known)})", entry=flow.file)

"""What a pack says about one of its components: world, limits, granted host interfaces.

Pure data: pack-loader reads it from `pack.yaml`, publishes it with the component's digest,
and the executor's component host enforces it on every call.
"""

from typing import Literal

import msgspec

World = Literal["seed", "node", "mcp", "provider"]
HostInterface = Literal["state", "secrets", "log", "http"]


class ComponentLimits(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True,
                      frozen=True):
    """Per-call limits; the defaults are safe for a componentize-py guest."""

    timeout_ms: int = 1000
    """Wall-clock deadline of one call (epoch interruption)."""
    fuel: int = 2_000_000_000
    """Wasm instructions (roughly) one call may execute."""
    memory_mib: int = 64
    """Linear memory cap per instance; a componentize-py guest needs at least 16."""
    max_output_bytes: int = 1024 * 1024
    """Largest result one call may return (seed `data`/`error`, node output CBOR, MCP result);
    a bigger one is refused with code `output-too-large`. Host memory stays bounded by
    `memory_mib` meanwhile: the result is copied out of guest memory once, then dropped."""
    reuse: Literal["none", "conversation"] = "none"
    """`none`: a fresh instance per call. `conversation`: reuse an instance for later calls of
    the same tenant + conversation only (never across conversations or tenants)."""


class ComponentCapabilities(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True,
                            frozen=True):
    """What the host grants: anything imported but not declared here refuses the component."""

    host: list[HostInterface] = []
    """Host interfaces the component may import (state, secrets, log, http)."""
    secrets: list[str] = []
    """Secret names the component may read (of the calling tenant)."""
    http_hosts: list[str] = []
    """Hosts outbound HTTP may reach (exact names, e.g. `api.example.com`)."""
    limits: ComponentLimits = ComponentLimits()


class ComponentManifest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One component of a pack (`pack.yaml` → `components:`)."""

    id: str
    version: str = "0.0.0"
    world: World = "seed"
    wasm: str = ""
    """Path of the component's `.wasm`, relative to the pack directory."""
    capabilities: ComponentCapabilities = ComponentCapabilities()
    operations: list[str] = []
    """Operation names flows may call (node world); empty means any."""
    default_operation: str = ""
    """What a flow node that names the component but no operation invokes (Greentic's
    component manifest `default_operation`)."""

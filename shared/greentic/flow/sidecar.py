"""`<flow>.ygtc.resolve.json`: binds a flow's nodes to components (Greentic's sidecar)."""

from pathlib import Path

import msgspec


class SidecarSource(msgspec.Struct):
    kind: str
    path: str | None = None
    digest: str | None = None
    ref: str | None = None


class SidecarNode(msgspec.Struct):
    component_id: str | None = None
    source: SidecarSource | None = None
    mode: str | None = None

    def component(self) -> str:
        """What the node is bound to: a component id, else its source path/reference."""
        if self.component_id:
            return self.component_id
        if self.source is not None:
            return self.source.path or self.source.ref or self.source.kind
        return ""


class ResolveSidecar(msgspec.Struct):
    schema_version: int = 1
    flow: str = ""
    nodes: dict[str, SidecarNode] = {}


def sidecar_path(flow_file: Path) -> Path:
    return flow_file.with_name(flow_file.name + ".resolve.json")


def file_bindings(flow_file: Path) -> dict[str, str]:
    """node id → what the flow's `.resolve.json` sidecar binds it to (a component id, else its
    source path or reference), for a flow checked on its own; {} without a sidecar. Raises
    ValueError naming the file."""
    sidecar = sidecar_path(flow_file)
    if not sidecar.exists():
        return {}
    return {node: entry.component() for node, entry in read_sidecar(sidecar).nodes.items()}


def summary_path(flow_file: Path) -> Path:
    """`<flow>.ygtc.resolve.summary.json`: what `greentic-flow resolve` made of the sidecar."""
    return flow_file.with_name(flow_file.name + ".resolve.summary.json")


def sidecar_bindings(flow_file: Path, wasm_files: dict[Path, str]) -> dict[str, str]:
    """node id → component id from a flow's summary or sidecar (the summary first, as
    packc reads them); a local source is matched to the pack component whose file it is
    (`wasm_files`: resolved path → component id). Raises ValueError naming the file."""
    bindings: dict[str, str] = {}
    for path in (sidecar_path(flow_file), summary_path(flow_file)):
        if not path.exists():
            continue
        for node, entry in read_sidecar(path).nodes.items():
            local = entry.source.path if entry.source and entry.source.kind == "local" else None
            if local:
                local_file = (flow_file.parent / local.removeprefix("file://")).resolve()
                bound = wasm_files.get(local_file) or entry.component_id
            else:
                bound = entry.component_id
            if bound:
                bindings[node] = bound
    return bindings


def read_sidecar(path: Path) -> ResolveSidecar:
    """Parse a sidecar; raises ValueError naming the file and field."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=ResolveSidecar)
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path}: {exc}") from None

"""A Greentic flow file's verdict: our loader's diagnostics, with its sidecar's bindings."""

from pathlib import Path

from greentic.compat.verdict import Verdict
from greentic.flow import check_flow
from greentic.flow.sidecar import read_sidecar, sidecar_path


def _bindings(path: Path) -> dict[str, str]:
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return {}
    return {node: entry.component() for node, entry in read_sidecar(sidecar).nodes.items()}


def judge_flow(path: Path, root: Path) -> Verdict:
    """Accepted when the flow loads (warnings allowed); refused with its first error."""
    shown = str(path.relative_to(root))
    try:
        source = path.read_text(encoding="utf-8")
        bindings = _bindings(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Verdict(shown, "flows", False, str(exc))
    flow, diagnostics = check_flow(source, shown, bindings=bindings)
    if flow is None:
        first = next(d for d in diagnostics if d.severity == "error")
        return Verdict(shown, "flows", False, str(first))
    return Verdict(shown, "flows", True, f"schema_version {flow.schema_version}, "
                   f"{len(flow.nodes)} nodes")

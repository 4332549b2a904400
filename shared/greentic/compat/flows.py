"""A Greentic flow file's verdict: our loader's diagnostics, with its sidecar's bindings."""

from pathlib import Path

from greentic.compat.verdict import Verdict
from greentic.flow import check_flow
from greentic.flow.sidecar import file_bindings


def judge_flow(path: Path, root: Path) -> Verdict:
    """Accepted when the flow loads (warnings allowed); refused with its first error."""
    shown = str(path.relative_to(root))
    try:
        source = path.read_text(encoding="utf-8")
        bindings = file_bindings(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Verdict(shown, "flows", False, str(exc))
    flow, diagnostics = check_flow(source, shown, bindings=bindings)
    if flow is None:
        first = next(d for d in diagnostics if d.severity == "error")
        return Verdict(shown, "flows", False, str(first))
    return Verdict(shown, "flows", True, f"schema_version {flow.schema_version}, "
                   f"{len(flow.nodes)} nodes")

"""The library's layers import downwards only (DESIGN §9)."""

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).parents[2] / "shared" / "greentic"

# a layer may import itself and the layers listed for it
ALLOWED = {
    "types": {"errors"},
    "bus": {"types", "errors", "telemetry"},
    "telemetry": set(),
    "config": {"types", "bus", "errors"},
    "flow": {"types", "errors", "telemetry"},
    "session": {"types", "bus", "errors"},
    "state": {"types", "bus", "errors", "session"},
    "interfaces": {"types", "errors"},
    "secrets": {"types", "errors", "config"},
    "component": {"interfaces", "types", "state", "secrets", "errors", "telemetry"},
    "mcp": {"interfaces", "types", "component", "state", "errors"},
    "pack": {"flow", "types", "bus", "config", "errors"},
    "runner": {"flow", "pack", "state", "session", "component", "interfaces", "mcp", "types",
               "bus", "config", "errors", "service", "telemetry", "secrets"},
}


def imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found |= {n.split(".")[1] for n in names if n.startswith("greentic.")}
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_lower_layer_never_imports_a_higher_one(layer: str) -> None:
    for path in (LIBRARY / layer).rglob("*.py"):
        illegal = imported_layers(path) - ALLOWED[layer] - {layer}
        assert not illegal, f"{path.relative_to(LIBRARY)} imports {sorted(illegal)}"

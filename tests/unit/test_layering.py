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
               "bus", "config", "errors", "telemetry", "secrets", "hosting"},
    "hosting": {"types", "bus", "config", "errors", "telemetry", "component", "pack", "state",
                "secrets"},
    "providers": {"types", "bus", "config", "errors", "telemetry", "hosting", "component"},
    "admin": {"types", "bus", "config", "errors", "hosting", "pack", "runner", "session"},
    "bench": {"types", "bus", "errors", "component", "interfaces", "hosting", "state",
              "providers"},
}
# the services (one module each) may use every library layer; only the CLI sits above them
ALLOWED["services"] = set(ALLOWED) | {"errors", "telemetry"}


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


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The library modules a file imports anywhere in it (deferred and TYPE_CHECKING ones too:
    a cycle hidden in a function is still a cycle in the design)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                      for a in node.names}
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in LIBRARY.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, as the modules along it, or None."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        trail.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*trail[trail.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        trail.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_module_of_the_library_imports_itself_through_others() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

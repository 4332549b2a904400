"""Where the WIT packages live, which imports the host offers, how a guest WIT is assembled."""

import shutil
from pathlib import Path

WIT_DIR = Path(__file__).parent / "wit"
"""One directory per WIT package (`seed`, `node`, `types-core`, …); the repo's `wit/` links here."""

PACKAGES = ("seed", "node", "types-core", "state-store", "secrets-store", "interfaces-types",
            "host-py", "mcp")

SEED_EXPORT = "execute"
NODE_EXPORT = "greentic:component/node@0.6.0"
MCP_EXPORT = "greentic-py:mcp/tools@0.1.0"

HOST_IMPORTS: dict[str, str] = {
    "greentic:state/state-store@1.0.0": "state",
    "greentic:secrets/secret-store@1.0.0": "secrets",
    "greentic-py:host/state@0.1.0": "state",
    "greentic-py:host/secrets@0.1.0": "secrets",
    "greentic-py:host/log@0.1.0": "log",
    "greentic-py:host/http@0.1.0": "http",
}
"""Host interfaces that need a grant in the component's manifest → the capability name."""

ALWAYS_GRANTED = ("greentic:component/control@0.6.0",)
TYPE_ONLY_IMPORTS = ("greentic:component/types", "greentic:types-core/core@0.6.0",
                     "greentic:interfaces-types/types@0.1.0")
"""Interfaces imported for their types only: nothing to link."""

WASI_PREFIXES = ("wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:cli/", "wasi:filesystem/",
                 "wasi:sockets/")
"""WASI 0.2.x, linked with no preopened directories, no environment and no network access."""


def assemble_wit(project_wit: Path, dest: Path) -> Path:
    """Copy a guest project's `wit/` to `dest` with every package we publish under `deps/`."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(project_wit, dest, ignore=shutil.ignore_patterns("deps"))
    for package in PACKAGES:
        shutil.copytree(WIT_DIR / package, dest / "deps" / package)
    return dest

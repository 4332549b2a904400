"""Where the WIT packages live, which imports the host offers, how a guest WIT is assembled."""

import shutil
from pathlib import Path

WIT_DIR = Path(__file__).parent / "wit"
"""One directory per WIT package (`seed`, `node`, `types-core`, …); the repo's `wit/` links here."""

PACKAGES = ("seed", "node", "types-core", "state-store", "secrets-store", "interfaces-types",
            "host-py", "mcp", "provider", "greentic-secrets-store-1.0.0")
"""The packages guests we build get as `deps/` (Greentic's secrets-store is copied unchanged:
the provider world imports it)."""

GREENTIC_PACKAGES = ("greentic-component-0.5.0", "greentic-interfaces-types-0.1.0",
                     "greentic-http-1.0.0", "greentic-http-1.1.0", "greentic-secrets-store-1.0.0",
                     "greentic-telemetry-1.0.0")
"""Greentic's own packages, copied unchanged, that Greentic-built components import and this
host serves; guests we build get PACKAGES instead (whose interfaces-types is the older subset;
secrets-store, which the provider world imports, is in both)."""

SEED_EXPORT = "execute"
NODE_EXPORT = "greentic:component/node@0.6.0"
NODE_V05_EXPORT = "greentic:component/node@0.5.0"
NODE_EXPORTS = (NODE_EXPORT, NODE_V05_EXPORT)
"""Node worlds hosted side by side, preferred first when a component exports both."""
MCP_EXPORT = "greentic-py:mcp/tools@0.1.0"
PROVIDER_PACKAGE = "greentic-py:messaging-provider"
PROVIDER_EXPORTS = (f"{PROVIDER_PACKAGE}/capabilities@0.1.0", f"{PROVIDER_PACKAGE}/ingress@0.1.0",
                    f"{PROVIDER_PACKAGE}/egress@0.1.0")
"""The provider world's exports: a component with any of them is a provider; it needs all."""
PROVIDER_REFUSED_IMPORTS = ("greentic:http/", "wasi:http/", "wasi:sockets/",
                            "greentic-py:host/http@")
"""Imports a provider component may not have: the host makes its requests, never the guest."""

HOST_IMPORTS: dict[str, str] = {
    "greentic:state/state-store@1.0.0": "state",
    "greentic:secrets/secret-store@1.0.0": "secrets",
    "greentic-py:host/state@0.1.0": "state",
    "greentic-py:host/secrets@0.1.0": "secrets",
    "greentic-py:host/log@0.1.0": "log",
    "greentic-py:host/http@0.1.0": "http",
    "greentic:secrets-store/secrets-store@1.0.0": "secrets",
    "greentic:http/http-client@1.0.0": "http",
    "greentic:http/http-client@1.1.0": "http",
    "greentic:telemetry/logger-api@1.0.0": "log",
}
"""Host interfaces that need a grant in the component's manifest → the capability name."""

ALWAYS_GRANTED = ("greentic:component/control@0.6.0", "greentic:component/control@0.5.0")
TYPE_ONLY_IMPORTS = ("greentic:component/types", "greentic:types-core/core@0.6.0",
                     "greentic:interfaces-types/types@0.1.0",
                     f"{PROVIDER_PACKAGE}/types@0.1.0")
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

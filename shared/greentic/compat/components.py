"""A `.wasm` file's verdict: whether our component host loads it, and as which world.

The file goes through the host's own load path (compile, detect the world from the exports,
check imports, link) with every host grant given, as a pack could declare them; nothing is
instantiated. Identical bytes are judged once per process (by sha256), and compiled code goes
through the component cache (`GREENTIC_COMPONENT_CACHE_DIR`), so a checkout carrying one
binary in many packs, or judged twice, costs one compile.
"""

from pathlib import Path

from greentic.compat.verdict import Verdict
from greentic.component.build import NoSecrets, default_cache_dir
from greentic.component.engine import ComponentEngine, sha256
from greentic.component.host import ComponentHost, detect_world
from greentic.errors import ComponentLoadError
from greentic.state import MemoryStateStore
from greentic.types.component import ComponentCapabilities, ComponentManifest

KIND = "components"
ALL_GRANTS = ComponentCapabilities(host=["state", "secrets", "log", "http"])

_WASM_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\x00\x00\x00"  # version 1, layer 0: a core module
_COMPONENT_LAYER = b"\x01\x00"  # layer 1 (bytes 6-7): a component, whatever its version

# exports we recognise but do not host → why, for the verdict (first match wins)
_UNHOSTED = (
    ("greentic:provider-schema-core/", "provider worlds are not hosted"),
    ("provider:common/", "provider worlds are not hosted"),
    ("greentic:component/runtime@", "provider worlds are not hosted"),
    ("greentic:component/node@0.4", "node 0.4 is not hosted"),
    ("greentic:component/component-runtime@", "the 0.6 component-runtime world is not hosted"),
    ("wasix:mcp/", "Greentic's MCP router world is not hosted"),
    ("wasi:cli/run@", "a WASI command, not a flow component"),
)

_verdicts: dict[str, tuple[bool, str]] = {}
_host: ComponentHost | None = None


def _component_host() -> ComponentHost:
    global _host
    if _host is None:
        _host = ComponentHost(ComponentEngine.shared(default_cache_dir()), MemoryStateStore(),
                              NoSecrets(), threads=1)
    return _host


def _unhosted(exports: set[str]) -> str:
    if not exports:
        return "exports nothing"
    listed = ", ".join(sorted(exports))
    why = next((reason for prefix, reason in _UNHOSTED
                if any(name.startswith(prefix) for name in exports)), "no hosted world")
    return f"exports {listed} ({why})"


def _reason(error: ComponentLoadError, name: str) -> str:
    prefix = f"component {name!r}: "  # the verdict's path names the file already
    text = str(error)
    return text[len(prefix):] if text.startswith(prefix) else text


def _judge(data: bytes, digest: str, name: str) -> tuple[bool, str]:
    if not data.startswith(_WASM_MAGIC):
        return False, "not WebAssembly"
    if data[4:8] == _CORE_VERSION:
        return False, "a core module, not a component"
    if data[6:8] != _COMPONENT_LAYER:
        return False, f"not WebAssembly: unknown version/layer {data[4:8].hex()}"
    host = _component_host()
    try:
        component = host.engine.compile(name, data, digest)
    except ComponentLoadError as exc:
        return False, _reason(exc, name)
    exports = set(component.type.exports(host.engine.engine))
    world = detect_world(exports)
    if world is None:
        return False, _unhosted(exports)
    manifest = ComponentManifest(id=name, world=world, capabilities=ALL_GRANTS)
    try:
        loaded = host.link(manifest, component, digest, len(data))
    except ComponentLoadError as exc:
        return False, _reason(exc, name)
    return True, f"node {loaded.node.version}" if loaded.node is not None else world


def component_verdict(data: bytes, name: str) -> tuple[bool, str]:
    """(accepted, reason) for a component's bytes; identical bytes are judged once. Never
    raises."""
    try:
        digest = sha256(data)
        if digest not in _verdicts:
            _verdicts[digest] = _judge(data, digest, name)
        return _verdicts[digest]
    except Exception as exc:  # one bad file is a refusal, never the end of the walk
        return False, f"{type(exc).__name__}: {exc}"


def judge_component(path: Path, root: Path) -> Verdict:
    """Accepted naming the world it is hosted as (`node 0.6.0`, `node 0.5.0`, `mcp`, `seed`);
    refused naming what is not WebAssembly, not a component, or not hosted. Never raises."""
    try:
        shown = str(path.relative_to(root))
    except ValueError:
        shown = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Verdict(shown, KIND, False, f"cannot read it: {exc.strerror}")
    accepted, reason = component_verdict(data, path.stem)
    return Verdict(shown, KIND, accepted, reason)

"""The example guests, built from source once per source change (cached by source hash)."""

from pathlib import Path

from greentic.component.build import build

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "examples" / "components"
PROVIDER_EXAMPLES = ROOT / "examples" / "providers"
BUILD_CACHE = ROOT / ".greentic" / "cache" / "builds"
COMPILE_CACHE = ROOT / ".greentic" / "cache" / "components"
"""Compiled guests (Component.serialize), shared by the tests and the executors they start."""
GUESTS = ("tiny", "echo", "hostile", "orders", "calc", "spinner")
PROVIDERS = ("signed-webhook", "telegram", "hostile")
"""Provider-world guests in `examples/providers/`."""


def build_guest(name: str, out_dir: Path) -> Path:
    """`examples/components/<name>` as a component in `out_dir` (seconds on a cache miss)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return build(EXAMPLES / name, out_dir / f"{name}.wasm", BUILD_CACHE)


def build_provider(name: str, out_dir: Path) -> Path:
    """`examples/providers/<name>` as a component in `out_dir` (seconds on a cache miss)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return build(PROVIDER_EXAMPLES / name, out_dir / f"provider-{name}.wasm", BUILD_CACHE)

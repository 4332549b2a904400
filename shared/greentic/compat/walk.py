"""The files of a repository checkout that `greentic compat` judges, by kind."""

from collections.abc import Iterator
from pathlib import Path

# build outputs and vendored copies, not files a user wrote or ships
SKIPPED_DIRS = frozenset({".git", "target", "node_modules", ".packc", "__pycache__"})


def _kind(path: Path) -> str | None:
    if path.suffix == ".ygtc":
        return "flows"
    if path.suffix == ".gtpack" or path.name == "pack.yaml":
        return "packs"
    if path.suffix == ".wasm":
        return "components"
    return None


def repository_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(kind, path) for every flow, pack and component under `root`, in path order."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if any(part in SKIPPED_DIRS for part in relative[:-1]) or not path.is_file():
            continue
        kind = _kind(path)
        if kind is not None:
            yield kind, path

"""Real files from Greentic's public repositories, for the compatibility tests.

They are not committed (their binaries are Greentic's builds, not ours): each one listed in
`tests/fixtures/greentic/sources.json` (repo, commit, path) is copied out of this machine's
snapshot of that repository (`$GREENTIC_MIRROR/{owner}+{name}/repo`, a bare git directory the
search tool's `fetch` makes) into `tests/fixtures/greentic/{owner}+{name}/{path}`. Git's object
ids pin the content to the commit. A test that needs a file this machine has no snapshot of is
skipped, saying which repository to fetch. `python -m tests.greentic_files` copies them all.
"""

import json
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "greentic"
MIRROR = Path(os.environ.get("GREENTIC_MIRROR", "/work/.mirror"))


@cache
def _sources() -> dict[tuple[str, str], str]:
    listed = json.loads((FIXTURES / "sources.json").read_text())["files"]
    return {(entry["repo"], entry["path"]): entry["commit"] for entry in listed}


def _copy(repo: str, path: str, commit: str) -> bool:
    git_dir = MIRROR / repo.replace("/", "+") / "repo"
    listing = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-z", commit, "--", path],
        capture_output=True,
    )
    rows = [row for row in listing.stdout.split(b"\0") if row]
    if listing.returncode or not rows:
        return False
    for row in rows:
        meta, name = row.split(b"\t", 1)
        _mode, kind, blob = meta.split()
        if kind != b"blob":
            continue
        content = subprocess.run(
            ["git", "--git-dir", str(git_dir), "cat-file", "blob", blob.decode()],
            capture_output=True,
            check=True,
        ).stdout
        out = FIXTURES / repo.replace("/", "+") / name.decode()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(content)
    return True


def greentic_path(repo: str, path: str) -> Path | None:
    """The local copy of a listed file or directory, or None when this machine lacks it."""
    commit = _sources().get((repo, path))
    if commit is None:
        raise KeyError(f"{repo}:{path} is not listed in tests/fixtures/greentic/sources.json")
    target = FIXTURES / repo.replace("/", "+") / path
    stamp = FIXTURES / repo.replace("/", "+") / f".{commit}.{path.replace('/', '_')}"
    if stamp.exists():
        return target
    if not _copy(repo, path, commit):
        return None
    stamp.touch()
    return target


def greentic_file(repo: str, path: str) -> Path:
    """`greentic_path`, skipping the calling test when this machine has no snapshot of `repo`."""
    found = greentic_path(repo, path)
    if found is None:
        commit = _sources()[(repo, path)]
        pytest.skip(
            f"real Greentic file {repo}:{path} @ {commit[:12]} is not on this machine "
            f"(no snapshot under {MIRROR}): fetch github:{repo}"
        )
    return found


if __name__ == "__main__":
    for repo, path in _sources():
        print(f"{repo}:{path} -> {greentic_path(repo, path) or 'MISSING (no snapshot)'}")

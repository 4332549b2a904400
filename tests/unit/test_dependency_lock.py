"""The lock (uv.lock and its exports for pip in requirements/) agrees with pyproject.toml, and
this environment holds exactly the lock."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked(name: str) -> dict[str, list[tuple[str, str | None, int]]]:
    """Package → [(version, marker, hash count)] of one lock file (a universal lock may pin a
    package twice, for different Pythons)."""
    pins: dict[str, list[tuple[str, str | None, int]]] = {}
    current: list | None = None
    for line in (REQUIREMENTS / name).read_text().splitlines():
        if match := PIN.match(line):
            current = [match[2], match[3], 0]
            pins.setdefault(canonicalize_name(match[1]), []).append(current)  # type: ignore[arg-type]
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            current[2] += 1
    return {name: [tuple(pin) for pin in entries] for name, entries in pins.items()}


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements_of_pyproject(extras: bool) -> list[Requirement]:
    """The runtime dependencies, the build group, and with `extras` every extra."""
    project = PYPROJECT["project"]
    lines = [*project["dependencies"], *PYPROJECT["dependency-groups"]["build"]]
    if extras:
        lines += [line for group in project["optional-dependencies"].values() for line in group]
    return [Requirement(line) for line in lines]


def environment(python: str | None = None) -> dict[str, str]:
    """This interpreter's marker environment, or the same machine with another Python x.y."""
    env = dict(default_environment())
    if python:
        env.update(python_version=python, python_full_version=f"{python}.7")
    return env


def applies(marker: str | None, env: dict[str, str]) -> bool:
    return marker is None or Marker(marker).evaluate(env)


@pytest.mark.parametrize(("lock", "extras"), [("lock.txt", True), ("runtime.txt", False)])
@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_every_requirement_of_pyproject_is_locked_within_its_range(
        lock: str, extras: bool, python: str) -> None:
    pins, env = locked(lock), environment(python)
    for requirement in requirements_of_pyproject(extras):
        if requirement.marker and not requirement.marker.evaluate(env):
            continue
        versions = [version for version, marker, _ in pins.get(
            canonicalize_name(requirement.name), []) if applies(marker, env)]
        assert versions, f"{requirement} is not in requirements/{lock}: run `make lock`"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/{lock} pins {requirement.name}=={version}, outside {requirement}:"
                " run `make lock`")


@pytest.mark.parametrize("lock", ["lock.txt", "runtime.txt", "build.txt", "uv.txt"])
def test_every_pin_is_exact_and_hash_checked(lock: str) -> None:
    pins = locked(lock)
    assert pins
    for name, entries in pins.items():
        for version, _, hashes in entries:
            assert hashes, f"requirements/{lock}: {name}=={version} has no hash"


@pytest.mark.parametrize("subset", ["runtime.txt", "build.txt"])
def test_the_image_and_build_sets_use_the_versions_of_the_full_lock(subset: str) -> None:
    full = locked("lock.txt")
    for name, entries in locked(subset).items():
        assert {(v, m) for v, m, _ in entries} <= {(v, m) for v, m, _ in full[name]}, name


def test_the_pip_files_are_exactly_what_uv_lock_resolved() -> None:
    """requirements/*.txt are exported from uv.lock (`make lock`): same packages, versions."""
    packages = tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    resolved = {(canonicalize_name(p["name"]), p["version"]) for p in packages
                if p["name"] != PYPROJECT["project"]["name"]}
    exported = {(name, version) for name, entries in locked("lock.txt").items()
                for version, _, _ in entries}
    assert exported == resolved, "run `make lock`"


def test_uv_lock_was_made_from_this_pyproject() -> None:
    """uv.lock records the requirements it resolved; a pyproject edit since needs `make lock`."""
    project = next(p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
                   if p["name"] == PYPROJECT["project"]["name"])["metadata"]
    recorded = {(canonicalize_name(r["name"]), str(SpecifierSet(r.get("specifier", ""))))
                for r in [*project["requires-dist"], *project["requires-dev"]["build"]]}
    declared = {(canonicalize_name(r.name), str(r.specifier))
                for r in requirements_of_pyproject(extras=True)}
    assert declared == recorded, "pyproject.toml changed since uv.lock was written: `make lock`"


def test_this_environment_holds_exactly_the_locked_versions() -> None:
    """(`make test-latest` deselects this one: it runs on the newest allowed versions.)"""
    env = environment()
    for name, entries in locked("lock.txt").items():
        wanted = [version for version, marker, _ in entries if applies(marker, env)]
        if not wanted:
            continue
        assert metadata.version(name) in wanted, (
            f"{name} {metadata.version(name)} is installed, the lock says {wanted}: `make test`"
            " reinstalls from requirements/lock.txt (or run `make lock` after editing pyproject)")

"""`greentic component new | build | describe` as a new user runs them."""

import os
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from greentic.component import ComponentEngine, ComponentHost
from greentic.component.build import NoSecrets
from greentic.state import MemoryStateStore
from greentic.types import TenantCtx
from greentic.types.component import ComponentManifest
from tests.guests import BUILD_CACHE, COMPILE_CACHE


def greentic(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "greentic", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "GREENTIC_COMPONENT_CACHE_DIR": str(COMPILE_CACHE)})


@pytest.mark.parametrize("world", ["seed", "node"])
async def test_new_then_build_then_describe_makes_a_working_component(tmp_path: Path,
                                                                      world: str) -> None:
    made = greentic("component", "new", "hello", "--world", world, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in (tmp_path / "hello").iterdir()) == sorted(
        ["app.py", "component.yaml", "wit"] + (["mini_cbor.py"] if world == "node" else []))
    built = greentic("component", "build", "hello", "--cache-dir", str(BUILD_CACHE),
                     cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wasm = tmp_path / "hello" / "component.wasm"
    assert wasm.stat().st_size > 1_000_000
    described = greentic("component", "describe", str(wasm), cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    assert f"world:      {world}" in described.stdout
    host = ComponentHost(ComponentEngine.shared(COMPILE_CACHE), MemoryStateStore(), NoSecrets())
    loaded = host.load(ComponentManifest(id="hello", world=world), wasm.read_bytes())
    tenant = TenantCtx("dev", "t", "team")
    if world == "seed":
        answer = await host.execute(loaded, tenant, "c", id="1", content="hi", sender="u",
                                    timestamp=0)
        assert answer == "hello got: hi"
    else:
        assert "operations: hello" in described.stdout
        answer = await host.invoke(loaded, tenant, "c", "hello", {"input": "Ada"})
        assert answer == {"text": "Hello Ada from hello"}
        assert cbor2.dumps(answer)
    host.close()


def test_a_name_that_is_not_a_wit_identifier_is_refused(tmp_path: Path) -> None:
    made = greentic("component", "new", "Hello_World", cwd=tmp_path)
    assert made.returncode == 2
    assert "lower-case letters" in made.stderr

"""`greentic pack new | build | sign | verify | inspect | keygen` as a user runs them."""

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from greentic.cli.main import cli
from greentic.pack.archive import read_zip, write_zip


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GREENTIC_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("GREENTIC_PACK_POLICY", raising=False)
    return CliRunner()


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, ["pack", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_new_keygen_build_verify_inspect(runner: CliRunner, tmp_path: Path) -> None:
    assert "created demo/" in run(runner, "new", "demo")
    assert (tmp_path / "demo" / "pack.yaml").is_file()
    assert (tmp_path / "demo" / "flows" / "welcome.ygtc").is_file()
    keygen = run(runner, "keygen", "-o", "release")
    assert stat.S_IMODE((tmp_path / "release.key").stat().st_mode) == 0o600
    public = (tmp_path / "release.pub").read_text().strip()
    assert public.startswith("ed25519:") and public in keygen
    assert "signed" in run(runner, "build", "demo", "-o", "demo.gtpack", "--key", "release.key")
    first = (tmp_path / "demo.gtpack").read_bytes()
    run(runner, "build", "demo", "-o", "again.gtpack", "--key", "release.key")
    assert (tmp_path / "again.gtpack").read_bytes() == first
    assert "verified: demo 0.1.0" in run(runner, "verify", "demo.gtpack", "--trust", public)
    assert "verified" in run(runner, "verify", "demo.gtpack", "--trust", "release.pub")
    shown = run(runner, "inspect", "demo.gtpack")
    assert "demo 0.1.0" in shown and "flows/welcome/flow.ygtc" in shown and public in shown
    assert '"pack_id": "demo"' in run(runner, "inspect", "demo.gtpack", "--json")


def test_build_unsigned_then_sign(runner: CliRunner, tmp_path: Path) -> None:
    run(runner, "new", "demo")
    run(runner, "keygen", "-o", "k")
    assert "unsigned" in run(runner, "build", "demo")  # default output: demo.gtpack
    public = (tmp_path / "k.pub").read_text().strip()
    refused = run(runner, "verify", "demo.gtpack", "--trust", public, code=1)
    assert "unsigned pack" in refused
    run(runner, "sign", "demo.gtpack", "--key", "k.key")
    assert "verified" in run(runner, "verify", "demo.gtpack", "--trust", public)


def test_verify_names_the_reason_and_exits_1(runner: CliRunner, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run(runner, "new", "demo")
    run(runner, "keygen", "-o", "k")
    run(runner, "keygen", "-o", "other")
    run(runner, "build", "demo", "--key", "k.key")
    other = (tmp_path / "other.pub").read_text().strip()
    assert "not a trusted key" in run(runner, "verify", "demo.gtpack", "--trust", other, code=1)
    dev = run(runner, "verify", "demo.gtpack", "--policy", "dev")
    assert "ANY key" in dev and "verified" in dev
    monkeypatch.setenv("GREENTIC_TRUSTED_KEYS", (tmp_path / "k.pub").read_text().strip())
    assert "verified" in run(runner, "verify", "demo.gtpack")
    entries = read_zip((tmp_path / "demo.gtpack").read_bytes())
    flow = "flows/welcome/flow.ygtc"
    entries[flow] = entries[flow].replace(b"says", b"lies")
    (tmp_path / "demo.gtpack").write_bytes(write_zip(entries))
    refused = run(runner, "verify", "demo.gtpack", code=1)
    assert "flows/welcome/flow.ygtc: content does not match its SBOM digest" in refused


def test_keygen_refuses_to_overwrite_and_new_refuses_bad_names(runner: CliRunner) -> None:
    run(runner, "keygen", "-o", "k")
    assert "refusing to overwrite" in run(runner, "keygen", "-o", "k", code=1)
    assert "letters, digits" in run(runner, "new", "no/slash", code=2)


def test_build_reports_a_broken_source(runner: CliRunner, tmp_path: Path) -> None:
    run(runner, "new", "demo")
    (tmp_path / "demo" / "flows" / "welcome.ygtc").write_text("id: welcome\nnodes: [a]\n")
    assert "welcome.ygtc" in run(runner, "build", "demo", code=1)
    assert not (tmp_path / "demo.gtpack").exists()

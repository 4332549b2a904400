"""The Dockerfile, as far as it can be checked without a Docker engine."""

import fnmatch
import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from greentic.cli.main import cli
from greentic.hosting.launcher import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.replace("\\\n", " ").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in INSTRUCTIONS if line.split()[0] == keyword]


def ignored(path: str) -> bool:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/")
               for p in patterns)


class TestDockerfile:
    def test_multi_stage_on_a_slim_python_running_greentic_as_uid_65532(self) -> None:
        assert len(instructions("FROM")) >= 2
        assert "slim" in next(a for a in instructions("ARG") if a.startswith("PYTHON_IMAGE"))
        assert instructions("USER") == ["65532:65532"]
        assert instructions("ENTRYPOINT") == ['["greentic"]']
        # the final stage installs nothing: it copies the built venv
        final = DOCKERFILE.rsplit("\nFROM ", 1)[1]
        assert "pip install" not in final

    def test_it_installs_exactly_the_locked_runtime_versions(self) -> None:
        installs = [cmd.strip() for run in instructions("RUN") for cmd in run.split("&&")
                    if "pip install" in cmd]
        locked = [cmd for cmd in installs if "--require-hashes" in cmd]
        assert {cmd.split("-r ", 1)[1] for cmd in locked} == {
            "requirements/build.txt", "requirements/runtime.txt"}
        # everything else is the project itself, which brings no dependency of its own
        assert all("--no-deps" in cmd for cmd in installs if cmd not in locked), installs
        assert "pip check" in DOCKERFILE

    def test_everything_it_copies_exists_and_is_in_the_build_context(self) -> None:
        for args in instructions("COPY"):
            if args.startswith("--from"):
                continue
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not ignored(source), f"{source} is excluded by .dockerignore"
        assert ignored(".venv") and ignored(".git") and ignored("tests")

    def test_the_demo_pack_it_points_the_default_bundle_at_is_copied(self) -> None:
        assert "COPY examples /usr/share/greentic/examples" in DOCKERFILE
        assert (ROOT / "examples" / "demo" / "pack" / "pack.yaml").exists()


class TestEntryPoints:
    """`greentic <service>` for each Deployment, `send` for `helm test`, `tap` for NOTES.txt."""

    def test_the_console_script_lists_every_command_the_image_is_run_with(self) -> None:
        script = Path(sys.executable).parent / "greentic"
        done = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        for command in (*SERVICES, "send", "tap"):
            assert f"  {command} " in done.stdout, command

    @pytest.mark.parametrize("command", [*SERVICES, "send", "tap"])
    def test_help_exits_zero(self, command: str) -> None:
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0, result.output

    @pytest.mark.parametrize("service", SERVICES)
    def test_each_service_main_module_is_importable(self, service: str) -> None:
        module = f"greentic_services.{service.replace('-', '_')}.main"
        assert importlib.util.find_spec(module) is not None, module

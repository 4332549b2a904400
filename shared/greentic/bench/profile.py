"""`--profile`: py-spy samples every service process during a bench run; a short summary of
where each spends its CPU goes next to the raw (collapsed-stack) files."""

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

ATTACH_TIMEOUT_S = 10.0


def start_profilers(processes: dict[str, subprocess.Popen], out: Path,
                    rate_hz: int = 250) -> dict[str, subprocess.Popen]:
    """One `py-spy record` per process, writing `<out>/<name>.txt` (collapsed stacks)."""
    # installed beside this Python (a venv's bin/ need not be on PATH)
    spy = shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                       os.environ.get("PATH", "")]))
    if spy is None:
        raise click.ClickException("py-spy is not installed (pip install -e '.[dev]')")
    out.mkdir(parents=True, exist_ok=True)
    profilers = {}
    for name, process in processes.items():
        with open(out / f"{name}.log", "wb") as log:
            profilers[name] = subprocess.Popen(
                [spy, "record", "--pid", str(process.pid), "--rate", str(rate_hz), "--format",
                 "raw", "--nonblocking", "-o", str(out / f"{name}.txt")],
                stdout=subprocess.DEVNULL, stderr=log)
    _wait_until_sampling(out, list(profilers), ATTACH_TIMEOUT_S)
    return profilers


def _wait_until_sampling(out: Path, names: list[str], timeout_s: float) -> None:
    """Return once every py-spy says it samples (attaching takes a moment; a short run
    started before that leaves no profile), or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    waiting = set(names)
    while waiting and time.monotonic() < deadline:
        waiting = {name for name in waiting
                   if b"Sampling process" not in (out / f"{name}.log").read_bytes()}
        time.sleep(0.05)


def stop_profilers(profilers: dict[str, subprocess.Popen]) -> None:
    """Ask each py-spy to write its file and wait for it."""
    for spy in profilers.values():
        spy.send_signal(signal.SIGINT)
    for spy in profilers.values():
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


# threads that only wait (the wasm epoch ticker, nats-py's flusher between writes)
_IDLE = ("Condition.wait", "Event.wait")
# where a service's own work starts: below the event loop, or below a thread's run()
_ANCHORS = ("Runner.run (asyncio/runners.py", "Thread.run (threading.py")


def hot_functions(collapsed: Path, top: int = 12) -> list[tuple[float, str]]:
    """(share of busy samples, function) of the functions most often on the stack below the
    event loop (or a thread's run), counting each once per sample (inclusive)."""
    inclusive: collections.Counter[str] = collections.Counter()
    busy = 0
    if not collapsed.is_file():  # py-spy writes nothing when it took no sample
        return []
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in _IDLE):
            continue
        busy += int(count)
        anchored = [i for i, frame in enumerate(frames) if frame.startswith(_ANCHORS)]
        for frame in set(frames[anchored[-1] + 1:] if anchored else frames):
            inclusive[frame] += int(count)
    return [(n / busy, f) for f, n in inclusive.most_common(top)] if busy else []

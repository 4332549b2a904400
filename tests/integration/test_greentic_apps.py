"""Greentic's own application, unchanged: its pack.yaml, flows and Rust-built node components
built with `greentic pack build`, served by `greentic up`, answering through WebChat (Direct
Line) with the reply Greentic's runner gives."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from greentic.hosting.launcher import free_port
from tests.greentic_files import greentic_file

QUICKSTART = ("greenticai/greentic-demo", "apps/quickstart-app")
# Greentic's runner: `component.exec` passes msg2events only the node's `input`/`config` (none
# here), so it extracts a text event from an unknown source; handlebars writes the event's data
# (a mapping) as `[object]` (tests/unit/test_greentic_components.py checks the component alone)
QUICKSTART_REPLY = ("Received: hello\n\nExtracted event:\n- Type: message.text\n"
                    "- Source: unknown\n- Data: [object]")


def greentic(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
             **kwargs) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GREENTIC_")}
    return subprocess.Popen([sys.executable, "-m", "greentic", *map(str, args)], cwd=cwd,
                            env={**clean, **(env or {})}, **kwargs)


def check(*args: str | Path, cwd: Path) -> str:
    done = greentic(*args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    return out


def test_greentics_quickstart_app_answers_through_webchat_as_greentics_runner(
        tmp_path: Path) -> None:
    app = greentic_file(*QUICKSTART)
    check("pack", "keygen", "-o", "publisher", cwd=tmp_path)
    built = check("pack", "build", app, "-o", "quickstart-app.gtpack", "--key",
                  "publisher.key", cwd=tmp_path)
    assert built.startswith("built quickstart-app.gtpack")
    (tmp_path / "bundle.yaml").write_text(json.dumps({
        "packs": {"quickstart-app": {"path": "quickstart-app.gtpack"}},
        "tenants": {"demo": {"packs": ["quickstart-app"], "teams": {"default": {"channels": {
            "webchat": {"provider": "webchat", "flow": "quickstart-app/on_message",
                        "config": {"anonymous": True, "secret": "quickstart-secret"}}}}}}}}))
    trusted = (tmp_path / "publisher.pub").read_text().strip()
    up = greentic("up", "--bundle", "bundle.yaml", "--port", free_port(), "--nats-port",
                  free_port(), cwd=tmp_path, env={"GREENTIC_TRUSTED_KEYS": trusted},
                  stderr=subprocess.PIPE, text=True)
    try:
        output, deadline = "", time.monotonic() + 90
        while "ready  WebChat" not in output:
            assert time.monotonic() < deadline and up.poll() is None, output
            output += up.stderr.readline()
        sent = greentic("send", "--timeout", "30", "hello", cwd=tmp_path,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = sent.communicate(timeout=60)
        assert sent.returncode == 0, err
        assert out == f"you> hello\nbot> {QUICKSTART_REPLY}\n"
        up.send_signal(signal.SIGINT)
        assert up.wait(40) == 0
    finally:
        if up.poll() is None:
            up.kill()

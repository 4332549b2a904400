"""A real platform for tests: nats-server from the wheel + the five services as processes."""

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from greentic.cli.processes import (
    SERVICES,
    free_port,
    is_ready,
    start_nats,
    start_service,
    stop_processes,
)

ECHO_FLOW = """\
id: echo
type: messaging
schema_version: 2
start: answer
nodes:
  answer:
    templating.handlebars:
      text: "{{tenant}} heard: {{in.input.text}}"
    routing: reply
"""

COUNTER_FLOW = """\
id: counter
type: messaging
schema_version: 2
start: count
nodes:
  count:
    templating.handlebars:
      text: "turn {{session.turn}}: {{in.input.text}}"
    routing: reply
"""

BUNDLE = {
    "packs": {"acme-pack": {"path": "packs/acme"}, "globex-pack": {"path": "packs/globex"}},
    "tenants": {
        "acme": {"packs": ["acme-pack"], "teams": {"support": {"channels": {
            "webchat": {"provider": "webchat", "flow": "acme-pack/echo",
                        "config": {"anonymous": True, "secret": "acme-secret"}},
            "broken": {"provider": "webchat", "flow": "acme-pack/missing",
                       "config": {"anonymous": True}},
            "counter": {"provider": "webchat", "flow": "acme-pack/counter",
                        "config": {"anonymous": True}},
        }}}},
        "globex": {"packs": ["globex-pack"], "teams": {"sales": {"channels": {
            "webchat": {"provider": "webchat", "flow": "globex-pack/echo",
                        "config": {"anonymous": True}},
        }}}},
    },
}


def write_pack(directory: Path, tenant_word: str) -> Path:
    (directory / "flows").mkdir(parents=True, exist_ok=True)
    (directory / "pack.yaml").write_text(
        f"pack_id: {directory.name}\nversion: 0.1.0\nflows:\n  - id: echo\n"
        "    file: flows/echo.ygtc\n  - id: counter\n    file: flows/counter.ygtc\n")
    (directory / "flows" / "counter.ygtc").write_text(COUNTER_FLOW)
    flow = directory / "flows" / "echo.ygtc"
    flow.write_text(ECHO_FLOW.replace("{{tenant}}", tenant_word))
    return flow


@dataclass
class Platform:
    """Handles to every process; `restart`/`kill` act on one service."""

    root: Path
    nats_port: int
    http_port: int
    env: dict[str, str]
    nats: subprocess.Popen | None = None
    services: dict[str, subprocess.Popen] = field(default_factory=dict)
    health_ports: dict[str, int] = field(default_factory=dict)

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self, service: str) -> str:
        return (self.root / "logs" / f"{service}.log").read_text(errors="replace")

    def start_nats(self) -> None:
        self.nats = start_nats(self.root / "nats", self.nats_port,
                               self.root / "logs" / "nats-server.log")

    def start(self, service: str, wait: bool = True, *, name: str | None = None,
              **env: str) -> subprocess.Popen:
        """Start `service`; `name` (default: the service) tells replicas apart (logs, ports)."""
        name = name or service
        port = self.health_ports.setdefault(name, free_port())
        process = start_service(service, {**self.env, **env, "GREENTIC_HEALTH_PORT": str(port)},
                                self.root / "logs" / f"{name}.log")
        self.services[name] = process
        if wait:
            self.wait_ready(name)
        return process

    def health(self, name: str) -> dict:
        """The /healthz counters of a running service."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_ports[name]}/healthz",
                                    timeout=5) as response:
            return json.loads(response.read())

    def wait_ready(self, service: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not is_ready(self.health_ports[service]):
            process = self.services[service]
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited ({process.returncode}):\n"
                                   f"{self.log(service)[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} not ready:\n{self.log(service)[-3000:]}")
            time.sleep(0.05)

    def kill(self, service: str) -> None:
        process = self.services.pop(service)
        process.kill()
        process.wait()

    def stop(self) -> None:
        stop_processes(list(self.services.values()), timeout=20)
        self.services.clear()
        if self.nats is not None:
            stop_processes([self.nats], timeout=10)


def write_default_packs(root: Path) -> None:
    write_pack(root / "packs" / "acme", "acme")
    write_pack(root / "packs" / "globex", "globex")


def make_platform(root: Path, extra_channels: dict | None = None,
                  extra_packs: dict[str, str | dict] | None = None, *,
                  bundle: dict | None = None,
                  write_packs: Callable[[Path], None] = write_default_packs,
                  **extra_env: str) -> Platform:
    """Write the test bundle (or `bundle`), plus `extra_channels` and `extra_packs` {id: path
    or pack source} for acme/support, and packs under `root`, and start everything."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    write_packs(root)
    bundle = json.loads(json.dumps(bundle or BUNDLE))
    if "acme" in bundle["tenants"]:
        bundle["tenants"]["acme"]["teams"]["support"]["channels"].update(extra_channels or {})
        for pack_id, directory in (extra_packs or {}).items():
            bundle["packs"][pack_id] = \
                {"path": directory} if isinstance(directory, str) else directory
            bundle["tenants"]["acme"]["packs"].append(pack_id)
    (root / "bundle.yaml").write_text(json.dumps(bundle))  # JSON is YAML
    platform = Platform(root=root, nats_port=free_port(), http_port=free_port(), env={})
    platform.env = {
        "GREENTIC_NATS_URL": platform.nats_url,
        "GREENTIC_BUNDLE": str(root / "bundle.yaml"),
        "GREENTIC_HTTP_PORT": str(platform.http_port),
        "GREENTIC_WEBCHAT_TOKEN_KEY": "test-token-key",
        "GREENTIC_ACK_WAIT_S": "2",
        "GREENTIC_FLOW_POLL_S": "0.2",
        "GREENTIC_DRAIN_TIMEOUT_S": "5",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    os.environ.pop("GREENTIC_NATS_URL", None)
    platform.start_nats()
    try:
        for service in SERVICES:
            platform.start(service, wait=False)
        for service in SERVICES:
            platform.wait_ready(service)
    except BaseException:
        platform.stop()
        raise
    return platform

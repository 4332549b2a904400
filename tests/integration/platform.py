"""A real platform for tests: nats-server from the wheel + the five services as processes."""

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from greentic.hosting.launcher import (
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
class NatsNode:
    """One nats-server of the platform (a cluster has three, on loopback)."""

    name: str
    port: int
    cluster_port: int = 0
    monitor_port: int = 0
    process: subprocess.Popen | None = None


@dataclass
class Platform:
    """Handles to every process; `restart`/`kill` act on one service."""

    root: Path
    nats_nodes: list[NatsNode]
    http_port: int
    env: dict[str, str]
    services: dict[str, subprocess.Popen] = field(default_factory=dict)
    health_ports: dict[str, int] = field(default_factory=dict)

    @property
    def nats_port(self) -> int:
        return self.nats_nodes[0].port

    @property
    def nats(self) -> subprocess.Popen | None:
        return self.nats_nodes[0].process

    @property
    def nats_servers(self) -> list[str]:
        return [f"nats://127.0.0.1:{node.port}" for node in self.nats_nodes]

    @property
    def nats_url(self) -> str:
        """GREENTIC_NATS_URL: the servers, comma-separated."""
        return ",".join(self.nats_servers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self, service: str) -> str:
        return (self.root / "logs" / f"{service}.log").read_text(errors="replace")

    def start_nats(self) -> None:
        for node in self.nats_nodes:
            self.start_nats_node(node)
        if len(self.nats_nodes) > 1:
            for node in self.nats_nodes:
                wait_for_jetstream(node)

    def start_nats_node(self, node: NatsNode) -> None:
        """Start (or restart) one nats-server with its file storage where it was."""
        if len(self.nats_nodes) == 1:
            node.process = start_nats(self.root / "nats", node.port,
                                      self.root / "logs" / "nats-server.log")
            return
        routes = ",".join(f"nats://127.0.0.1:{other.cluster_port}" for other in self.nats_nodes
                          if other is not node)
        node.process = start_nats(
            self.root / "nats" / node.name, node.port, self.root / "logs" / f"{node.name}.log",
            ["-n", node.name, "-m", str(node.monitor_port), "--cluster_name", "greentic",
             "--cluster", f"nats://127.0.0.1:{node.cluster_port}", "--routes", routes])

    def kill_nats(self, node: NatsNode) -> None:
        """SIGKILL one nats-server."""
        assert node.process is not None
        node.process.kill()
        node.process.wait()
        node.process = None

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
        stop_processes([node.process for node in self.nats_nodes if node.process], timeout=10)


def wait_for_jetstream(node: NatsNode, timeout: float = 30) -> None:
    """Until the node's JetStream is current (a cluster has elected its meta leader)."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{node.monitor_port}/healthz"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"nats-server {node.name}: JetStream not ready after {timeout}s")


def write_default_packs(root: Path) -> None:
    write_pack(root / "packs" / "acme", "acme")
    write_pack(root / "packs" / "globex", "globex")


def make_platform(root: Path, extra_channels: dict | None = None,
                  extra_packs: dict[str, str | dict] | None = None, *,
                  bundle: dict | None = None,
                  write_packs: Callable[[Path], None] = write_default_packs,
                  nats_nodes: int = 1, **extra_env: str) -> Platform:
    """Write the test bundle (or `bundle`), plus `extra_channels` and `extra_packs` {id: path
    or pack source} for acme/support, and packs under `root`, and start everything (on a
    cluster of `nats_nodes` nats-servers when more than one)."""
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
    nodes = [NatsNode(f"n{i}", free_port(), free_port(), free_port()) for i in range(nats_nodes)]
    platform = Platform(root=root, nats_nodes=nodes, http_port=free_port(), env={})
    platform.env = {
        "GREENTIC_NATS_URL": platform.nats_url,
        "GREENTIC_BUNDLE": str(root / "bundle.yaml"),
        "GREENTIC_HTTP_PORT": str(platform.http_port),
        "GREENTIC_WEBCHAT_TOKEN_KEY": "test-token-key",
        "GREENTIC_ACK_WAIT_S": "2",
        "GREENTIC_PARTITION_LEASE_S": "3",
        "GREENTIC_FLOW_POLL_S": "0.2",
        "GREENTIC_DRAIN_TIMEOUT_S": "5",
        "GREENTIC_MAX_DELIVER": "5",  # poisoned messages reach the dead letters within ~10 s
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

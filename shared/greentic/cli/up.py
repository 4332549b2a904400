"""`greentic up`: embedded nats-server + the five services as five processes, until Ctrl-C."""

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from greentic.cli.state import STATE_DIR, STATE_FILE, UpState, write_state
from greentic.config.bundle import load_bundle
from greentic.errors import ConfigError
from greentic.hosting.launcher import (
    SERVICES,
    free_port,
    is_ready,
    start_nats,
    start_service,
    stop_processes,
)

console = Console(stderr=True)


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: object) -> None:
    raise _Stop


@click.command()
@click.option("--bundle", default="examples/demo/greentic.demo.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="Tenants, channels and packs to serve.")
@click.option("--nats-url", help="Use this NATS (with JetStream) instead of starting one.")
@click.option("--nats-port", default=4223, show_default=True, help="Port of the embedded NATS.")
@click.option("--port", default=8080, show_default=True, help="Public HTTP port of ingress.")
@click.option("--env", "env_name", default="dev", show_default=True, help="Environment token.")
def up(bundle: str, nats_url: str | None, nats_port: int, port: int, env_name: str) -> None:
    """Run the whole platform locally; Ctrl-C stops every process cleanly."""
    try:
        load_bundle(bundle)  # fail here, readably, rather than in five processes
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    logs = STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    nats_process = None
    signal.signal(signal.SIGTERM, _raise_stop)
    # Ctrl-C as well, even when started from a shell that set SIGINT to "ignore" for its
    # background jobs (Python then keeps it ignored)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        if nats_url is None:
            nats_process = start_nats(STATE_DIR / "nats", nats_port, logs / "nats-server.log")
            nats_url = f"nats://127.0.0.1:{nats_port}"
            console.print(f"nats-server with JetStream on {nats_url} (data in {STATE_DIR}/nats)")
        common = {
            "GREENTIC_NATS_URL": nats_url,
            "GREENTIC_BUNDLE": str(Path(bundle).resolve()),
            "GREENTIC_ENV": env_name,
            "GREENTIC_HTTP_PORT": str(port),
            "GREENTIC_WEBCHAT_TOKEN_KEY": os.environ.get("GREENTIC_WEBCHAT_TOKEN_KEY",
                                                         secrets.token_hex(32)),
        }
        health_ports = {}
        for service in SERVICES:
            health_ports[service] = free_port()
            processes.append(start_service(
                service, {**common, "GREENTIC_HEALTH_PORT": str(health_ports[service])},
                logs / f"{service}.log"))
        _wait_ready(processes, health_ports, logs)
        ingress_url = f"http://127.0.0.1:{port}"
        write_state(UpState(nats_url=nats_url, ingress_url=ingress_url, pid=os.getpid()))
        console.print(f"[bold green]ready[/]  WebChat: [bold]{ingress_url}/webchat/[/]")
        console.print("  talk:  greentic send \"hello\"      watch: greentic tap      "
                      f"logs: {logs}/")
        console.print("  Ctrl-C stops everything.")
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        dead = [s for s, p in zip(SERVICES, processes, strict=True) if p.poll() is not None]
        raise click.ClickException(f"{', '.join(dead)} exited; see {logs}/")
    except (KeyboardInterrupt, _Stop):
        console.print("stopping…")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_processes(processes, timeout=25)
        if nats_process is not None:
            stop_processes([nats_process], timeout=10)
        STATE_FILE.unlink(missing_ok=True)
        console.print("stopped")


def _wait_ready(processes: list[subprocess.Popen], health_ports: dict[str, int],
                logs: Path) -> None:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console,
                  transient=True) as progress:
        task = progress.add_task("starting services…")
        deadline = time.monotonic() + 60
        waiting = set(SERVICES)
        while waiting:
            for service, process in zip(SERVICES, processes, strict=True):
                if process.poll() is not None:
                    raise click.ClickException(f"{service} exited while starting; "
                                               f"see {logs}/{service}.log")
                if service in waiting and is_ready(health_ports[service]):
                    waiting.discard(service)
                    console.print(f"  {service} ready (pid {process.pid})")
            progress.update(task, description=f"waiting for {', '.join(sorted(waiting))}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"not ready after 60s: {', '.join(waiting)}")
            time.sleep(0.1)

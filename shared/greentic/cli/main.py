"""`greentic`: one CLI for running, talking to and watching the platform."""

import importlib

import click

from greentic.cli.bench import bench
from greentic.cli.compat import compat
from greentic.cli.component import component
from greentic.cli.flow import flow
from greentic.cli.pack import pack
from greentic.cli.provider import provider
from greentic.cli.send import send
from greentic.cli.session import session
from greentic.cli.tap import nats_permissions, tap
from greentic.cli.up import up
from greentic.hosting.launcher import SERVICES


@click.group()
@click.version_option(package_name="greentic")
def cli() -> None:
    """Greentic for Python: chat flows over NATS, on WebAssembly."""


def _service_command(service: str) -> click.Command:
    def run() -> None:
        importlib.import_module(f"greentic_services.{service.replace('-', '_')}.main").main()

    return click.Command(service, callback=run,
                         help=f"Run the {service} service (configured by GREENTIC_* variables).")


for _service in SERVICES:
    cli.add_command(_service_command(_service))
cli.add_command(up)
cli.add_command(flow)
cli.add_command(send)
cli.add_command(tap)
cli.add_command(nats_permissions)
cli.add_command(session)
cli.add_command(component)
cli.add_command(compat)
cli.add_command(provider)
cli.add_command(bench)
cli.add_command(pack)

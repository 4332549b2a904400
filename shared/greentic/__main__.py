"""`python -m greentic` is the `greentic` CLI."""

from greentic.cli.main import cli

cli()

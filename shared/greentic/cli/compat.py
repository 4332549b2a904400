"""`greentic compat DIR`: what of a Greentic repository checkout runs here."""

import sys
from pathlib import Path

import click

from greentic.compat.components import judge_component
from greentic.compat.flows import judge_flow
from greentic.compat.packs import judge_pack
from greentic.compat.verdict import Verdict, summary_line
from greentic.compat.walk import repository_files

JUDGES = {"flows": judge_flow, "packs": judge_pack, "components": judge_component}


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--refused-only", is_flag=True, help="Print only the refused files.")
def compat(directory: Path, refused_only: bool) -> None:
    """Judge every flow, pack and component under DIRECTORY: one line per file (accepted /
    refused and why), then `flows N/M, packs N/M, components N/M`. Exits 1 when any is refused."""
    verdicts: list[Verdict] = []
    for kind, path in repository_files(directory):
        if kind not in JUDGES:
            continue
        verdict = JUDGES[kind](path, directory)
        verdicts.append(verdict)
        if verdict.accepted and refused_only:
            continue
        word = "accepted" if verdict.accepted else "refused "
        click.echo(f"{word} {kind[:-1]:9} {verdict.path}: {verdict.reason}")
    click.echo(summary_line(verdicts))
    sys.exit(0 if all(v.accepted for v in verdicts) else 1)

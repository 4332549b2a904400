"""`greentic bench wasm`: the component host's costs on this machine, as a table."""

from pathlib import Path

import click

from greentic.component.bench import run_wasm_bench


@click.group()
def bench() -> None:
    """Benchmarks (print tables; nothing is asserted)."""


@bench.command()
@click.option("--calls", default=2000, show_default=True, help="Calls per latency measurement.")
@click.option("--examples", type=click.Path(file_okay=False, path_type=Path),
              default=Path("examples/components"), show_default=True,
              help="Where the echo and tiny example guests are (built if needed).")
def wasm(calls: int, examples: Path) -> None:
    """Per-call latency (host vs bare wasmtime-py), instantiate, cached vs cold load, calls/s."""
    for line in run_wasm_bench(examples, calls=calls, progress=lambda m: click.echo(m, err=True)):
        click.echo(line)

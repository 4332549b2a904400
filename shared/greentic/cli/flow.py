"""`greentic flow validate | graph | run`: work on flow files without running the platform."""

import asyncio
import sys
from pathlib import Path

import click

from greentic.errors import FlowError
from greentic.flow import FlowEngine, FlowSnapshot, PreparedFlow, check_flow, load_flow
from greentic.flow.graph import to_dot, to_mermaid, to_svg
from greentic.flow.sidecar import file_bindings
from greentic.runner.operations import state_operations
from greentic.state import MemoryStateStore
from greentic.types import Envelope, TenantCtx, new_id


@click.group()
def flow() -> None:
    """Validate, draw and try flows (`.ygtc`)."""


@flow.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                    path_type=Path))
@click.option("--strict", is_flag=True, help="Unbound operations are errors (as inside a pack).")
def validate(files: tuple[Path, ...], strict: bool) -> None:
    """Check flow files; prints `file:line:col: node 'x': message`, exits 1 on any error."""
    failed = False
    for path in files:
        try:
            bindings = file_bindings(path)
        except ValueError as exc:
            click.echo(f"{exc}", err=True)
            failed = True
            continue
        parsed, diagnostics = check_flow(path.read_text(encoding="utf-8", errors="replace"),
                                         str(path), bindings=bindings, strict_bindings=strict)
        for diagnostic in diagnostics:
            click.echo(str(diagnostic), err=diagnostic.severity == "error")
        if parsed is None:
            failed = True
        else:
            click.echo(f"{path}: ok ({len(parsed.nodes)} nodes)")
    sys.exit(1 if failed else 0)


@flow.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of stdout.")
def graph(file: Path, fmt: str, output: Path | None) -> None:
    """Draw a flow's nodes, routes and statuses."""
    try:
        parsed = load_flow(file.read_text(encoding="utf-8"), str(file))
    except FlowError as exc:
        raise click.ClickException(str(exc)) from None
    text = {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}[fmt](parsed)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _sibling_flows(path: Path, engine: FlowEngine) -> dict[str, PreparedFlow]:
    """Flows next to `path` (a pack's flows/ folder), by id, for flow.call / flow.goto."""
    found = {}
    for sibling in sorted(path.parent.glob("*.ygtc")):
        parsed, _ = check_flow(sibling.read_text(encoding="utf-8"), str(sibling))
        if parsed is not None:
            found[parsed.id] = engine.prepare(parsed, "local")
    return found


async def _run(engine: FlowEngine, main: PreparedFlow, flows: dict[str, PreparedFlow],
               inputs: tuple[str, ...], conversation: str) -> int:
    snapshot: FlowSnapshot | None = None
    ctx = TenantCtx("dev", "local", "local")
    for number, text in enumerate(inputs, 1):
        envelope = Envelope(id=new_id(), ctx=ctx, channel="cli", provider="cli",
                            conversation=conversation, sender="you", text=text)
        click.echo(f"--- turn {number}\nyou> {text}")
        result = await engine.run_turn(main, envelope, snapshot, flows.get)
        click.echo(f"    steps: {' → '.join(result.steps)}")
        for reply in result.replies:
            buttons = "  " + " ".join(f"[{b.title}]" for b in reply.buttons) if reply.buttons \
                else ""
            click.echo(f"bot> {reply.text}{buttons}")
        snapshot = result.paused
        click.echo(f"    (waiting at node '{snapshot.node}')" if snapshot else "    (flow ended)")
    return 0


@flow.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--input", "-i", "inputs", multiple=True, required=True,
              help="A user message; repeat for more turns.")
@click.option("--conversation", default="local-conversation", show_default=True)
def run(file: Path, inputs: tuple[str, ...], conversation: str) -> None:
    """Run a flow locally (no NATS), one turn per --input, printing each step."""
    try:
        engine = FlowEngine(operations=state_operations(MemoryStateStore()))
        main = engine.prepare(load_flow(file.read_text(encoding="utf-8"), str(file),
                                        bindings=file_bindings(file)), "local")
        flows = {**_sibling_flows(file, engine), main.flow.id: main}
        sys.exit(asyncio.run(_run(engine, main, flows, inputs, conversation)))
    except FlowError as exc:
        raise click.ClickException(str(exc)) from None

"""`greentic component new | build | describe`: make, build and inspect guest components."""

import json
import re
import time
from pathlib import Path

import click

from greentic.component.build import BuildError, build, describe
from greentic.errors import ComponentLoadError
from greentic.interfaces.wit import HOST_IMPORTS, WASI_PREFIXES
from greentic.mcp import describe_tools

TEMPLATES = Path(__file__).parents[1] / "component" / "templates"
WORLD_INCLUDES = {
    "seed": "greentic:component/component",
    "node": "greentic:component/component@0.6.0",
    "mcp": "greentic-py:mcp/tool-server@0.1.0",
    "provider": "greentic-py:messaging-provider/provider@0.1.0",
}
OPTIONAL_IMPORTS = {
    "seed": ["greentic-py:host/state@0.1.0", "greentic-py:host/secrets@0.1.0",
             "greentic-py:host/log@0.1.0", "greentic-py:host/http@0.1.0"],
    "node": ["greentic:state/state-store@1.0.0", "greentic:secrets/secret-store@1.0.0"],
    "mcp": ["greentic-py:host/log@0.1.0"],
    "provider": ["greentic-py:host/log@0.1.0"],
}
GRANTS = {"provider": ("[secrets]", "[webhook_token]")}
"""What a world's scaffold needs granted (host interfaces, secret names); others: none."""


@click.group()
def component() -> None:
    """Make, build and inspect WebAssembly components."""


@component.command()
@click.argument("name")
@click.option("--world", "--kind", "world", type=click.Choice(["seed", "node", "mcp", "provider"]),
              default="seed",
              show_default=True, help="seed: execute(message); node: greentic:component@0.6.0 "
              "invoke(op, envelope); mcp: list-tools/call-tool; provider: a messaging provider "
              "(webhook in, requests out).")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), help="Where to create the NAME directory.")
def new(name: str, world: str, parent: Path) -> None:
    """Scaffold a Python guest component in NAME/."""
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise click.BadParameter("lower-case letters, digits and single dashes, e.g. "
                                 "'order-lookup'", param_hint="NAME")
    target = parent / name
    if target.exists():
        raise click.ClickException(f"{target} already exists")
    (target / "wit").mkdir(parents=True)
    imports = "".join(f"  // import {i};  (declare it in component.yaml capabilities.host)\n"
                      for i in OPTIONAL_IMPORTS[world])
    (target / "wit" / "world.wit").write_text(
        f"package local:{name};\n\nworld {name} {{\n  include {WORLD_INCLUDES[world]};\n"
        f"{imports}}}\n")
    host, secrets = GRANTS.get(world, ("[]", "[]"))
    (target / "component.yaml").write_text(
        f"id: {name}\nversion: 0.1.0\nworld: {world}\n"
        f"capabilities:\n  host: {host:<11} # state, secrets, log, http\n"
        f"  secrets: {secrets:<8} # secret names it may read\n"
        "  http_hosts: []    # hosts outbound HTTP may reach\n"
        "  limits: {timeout_ms: 1000, memory_mib: 64}\n")
    for template in sorted((TEMPLATES / world).iterdir()):
        if template.suffix == ".tmpl":
            (target / template.stem).write_text(template.read_text().format(name=name))
        elif template.suffix == ".py":
            (target / template.name).write_text(template.read_text())
    click.echo(f"created {target}/ ({world} world): app.py, wit/world.wit, component.yaml")
    click.echo(f"next: greentic component build {target}")


@component.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=Path("."))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default DIRECTORY/component.wasm).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Reuse a build of the same sources from here (keyed by source sha256).")
def build_command(directory: Path, output: Path | None, cache_dir: Path | None) -> None:
    """Build DIRECTORY (app.py with componentize-py, or a .wat with wasm-tools) offline."""
    click.echo(f"building {directory} …", err=True)
    started = time.monotonic()
    try:
        built = build(directory, output, cache_dir)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None
    size = built.stat().st_size
    click.echo(f"{built}  {size / 1024 / 1024:.1f} MiB" if size > 1 << 20 else
               f"{built}  {size} bytes")
    click.echo(f"built in {time.monotonic() - started:.1f}s", err=True)


@component.command("describe")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def describe_command(file: Path, as_json: bool) -> None:
    """Print a component's world, operations or tools, and imports."""
    data = file.read_bytes()
    try:
        info = describe(data, file.stem)
        if info["world"] == "mcp":
            info["tools"] = describe_tools(data, file.stem)
    except ComponentLoadError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{file}  {info['size']} bytes")
    world = info["world"] or f"unknown (exports: {', '.join(info['exports'])})"
    click.echo(f"world:      {world}")
    if info.get("name"):
        click.echo(f"describes:  {info['name']} {info.get('version', '')}")
    if info["operations"]:
        click.echo(f"operations: {', '.join(info['operations'])}")
    for tool in info.get("tools", []):
        click.echo(f"tool:       {tool['name']} — {tool['description']}")
    wasi = [i for i in info["imports"] if i.startswith(WASI_PREFIXES)]
    others = [i for i in info["imports"] if i not in wasi]
    if wasi:
        click.echo(f"imports:    WASI 0.2 ({len(wasi)} interfaces)")
    for name in others:
        grant = HOST_IMPORTS.get(name)
        note = f"  (needs capabilities.host: [{grant}])" if grant else ""
        click.echo(f"imports:    {name}{note}")
    if info.get("refused"):
        click.echo(f"refused:    {info['refused']}")

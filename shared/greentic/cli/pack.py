"""`greentic pack new | build | sign | verify | inspect | keygen | push | pull | deploy`:
make, check and ship `.gtpack`s, and deploy one to a running platform."""

import asyncio
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import click
import msgspec
import nats
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from greentic.cli.state import default_nats_url
from greentic.config.settings import Settings, load_settings
from greentic.errors import GreenticError
from greentic.pack.archive import (
    DEFAULT_LIMITS,
    PackLimits,
    build_pack,
    read_pack_file,
    sign_pack,
)
from greentic.pack.deploy import DeployReply, DeployRequest, request_deploy
from greentic.pack.greentic_build import build_greentic_pack
from greentic.pack.greentic_format import (
    FORMAT_NAMES,
    PackFormat,
    detect_format,
    parse_greentic_trust,
    read_greentic_pack,
    verify_greentic_pack,
)
from greentic.pack.greentic_format.entries import entry_methods
from greentic.pack.greentic_format.sbom import blake3_hex
from greentic.pack.keys import parse_trusted_keys, read_signing_key, write_keypair
from greentic.pack.oci import OciOptions, PullResult, PushResult, RegistryClient
from greentic.pack.sign import SIGNATURE_ENTRY, Trust
from greentic.types.oci import Reference, parse_reference

WELCOME_FLOW = """\
id: welcome
type: messaging
schema_version: 2
start: answer
nodes:
  answer:
    templating.handlebars:
      text: "{name} says: you wrote {{{{in.input.text}}}}"
    routing: reply
"""


@click.group()
def pack() -> None:
    """Make, sign and check signed packs (.gtpack); push and pull them through OCI registries."""


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` in one rename, so a pack-loader polling it never reads half a pack."""
    handle, temporary = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _fail(exc: GreenticError) -> click.ClickException:
    return click.ClickException(str(exc))


@pack.command()
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), help="Where to create the NAME directory.")
def new(name: str, parent: Path) -> None:
    """Scaffold a pack source in NAME/: pack.yaml and a welcome flow."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise click.BadParameter("letters, digits, '_' and '-' (it becomes a subject token)",
                                 param_hint="NAME")
    target = parent / name
    if target.exists():
        raise click.ClickException(f"{target} already exists")
    (target / "flows").mkdir(parents=True)
    (target / "assets").mkdir()
    (target / "pack.yaml").write_text(
        f"pack_id: {name}\nversion: 0.1.0          # semver; bump it for every release\n"
        "kind: application\npublisher: me\n"
        "flows:\n  - {id: welcome, file: flows/welcome.ygtc, entrypoints: [default], tags: []}\n"
        "components: []           # see docs/components.md, 'In a pack'\n")
    (target / "flows" / "welcome.ygtc").write_text(WELCOME_FLOW.format(name=name))
    click.echo(f"created {target}/: pack.yaml, flows/welcome.ygtc, assets/")
    click.echo(f"next: greentic pack keygen -o {name}-key && "
               f"greentic pack build {target} -o {name}.gtpack --key {name}-key.key")


@pack.command("build")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The .gtpack to write (default <DIRECTORY name>.gtpack).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sign it too, with this private key (from `greentic pack keygen`).")
@click.option("--format", "pack_format", type=click.Choice(["greentic-py", "greentic"]),
              default="greentic-py", show_default=True,
              help="greentic: the archive Greentic's own `greentic-pack build` writes.")
def build_command(directory: Path, output: Path | None, key: Path | None,
                  pack_format: str) -> None:
    """Build DIRECTORY (our pack.yaml or Greentic's) into a deterministic .gtpack (unsigned
    unless --key)."""
    output = output or Path(f"{directory.resolve().name}.gtpack")
    if pack_format == "greentic" and key is not None:
        raise click.UsageError("--key signs our format; Greentic's packs are built unsigned")
    try:
        data = build_pack(directory) if pack_format == "greentic-py" else \
            build_greentic_pack(directory)
        if key is not None:
            data = sign_pack(data, read_signing_key(key))
    except GreenticError as exc:
        raise _fail(exc) from None
    _write_atomically(output, data)
    click.echo(f"built {output} ({len(data)} bytes, {pack_format} format, "
               f"{'signed' if key else 'unsigned'})")


@pack.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", required=True, type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              help="Private key file (from `greentic pack keygen`).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the signed pack here instead of replacing ARCHIVE.")
def sign(archive: Path, key: Path, output: Path | None) -> None:
    """Sign ARCHIVE (replacing any signature) after checking its contents."""
    try:
        signing_key = read_signing_key(key)
        data = sign_pack(archive.read_bytes(), signing_key)
    except GreenticError as exc:
        raise _fail(exc) from None
    _write_atomically(output or archive, data)
    click.echo(f"signed {output or archive}")


def _trusted(values: tuple[str, ...]) -> frozenset[str]:
    """`ed25519:…` keys, comma-separated lists of them, or files holding them (`.pub`)."""
    text = []
    for value in values:
        path = Path(value)
        text.append(path.read_text() if not value.startswith("ed25519:") and path.is_file()
                    else value)
    return parse_trusted_keys(",".join(text))


@pack.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust", "trust_values", multiple=True, envvar="GREENTIC_TRUSTED_KEYS",
              help="A trusted public key ('ed25519:…', a comma-separated list, or a .pub "
              "file); repeatable. Default: $GREENTIC_TRUSTED_KEYS.")
@click.option("--policy", type=click.Choice(["strict", "dev"]), default="strict",
              show_default=True, envvar="GREENTIC_PACK_POLICY",
              help="dev: accept any key whose signature verifies (never in production).")
def verify(archive: Path, trust_values: tuple[str, ...], policy: str) -> None:
    """Check ARCHIVE completely; exit 0 if it would be loaded, 1 with the reason if not.

    Greentic's own archives (.gtpack of greentic-pack/packc) are checked too: every entry's
    BLAKE3 against its SBOM, and the signature when there is one; --trust then also takes
    certificates (PEM) a signature's chain must be anchored by, or Ed25519 public keys."""
    pack_format, data = _format_of(archive)
    if pack_format != "greentic-py":
        _verify_greentic(archive, data, pack_format, trust_values, policy)
        return
    try:
        trust = Trust(keys=_trusted(trust_values), policy=policy)  # type: ignore[arg-type]
        if policy == "dev":
            click.echo("warning: policy dev accepts packs signed by ANY key", err=True)
        loaded = read_pack_file(archive, trust=trust)
    except GreenticError as exc:
        click.echo(f"refused: {archive}: {exc}", err=True)
        raise SystemExit(1) from None
    manifest = loaded.manifest
    click.echo(f"verified: {manifest.pack_id} {manifest.version} ({len(loaded.entries)} "
               f"entries) signed by {loaded.signed_by}")


@pack.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="The manifest and SBOM as JSON.")
def inspect(archive: Path, as_json: bool) -> None:
    """Show ARCHIVE's format, entries, digests and manifest (checks structure; verifies no
    signature). Greentic's own archives are shown too (their digests are not checked)."""
    pack_format, data = _format_of(archive)
    if pack_format != "greentic-py":
        _inspect_greentic(archive, data, pack_format, as_json)
        return
    try:
        loaded = read_pack_file(archive, trust=None)
    except GreenticError as exc:
        raise _fail(exc) from None
    signature = loaded.entries.get(SIGNATURE_ENTRY)
    signer = json.loads(signature).get("public_key") if signature else None
    manifest = loaded.manifest
    if as_json:
        click.echo(json.dumps({"manifest": msgspec.to_builtins(manifest),
                               "sbom": msgspec.to_builtins(loaded.sbom),
                               "signature_key": signer}, indent=2))
        return
    click.echo(f"format     {FORMAT_NAMES['greentic-py']}")
    click.echo(f"pack       {manifest.pack_id} {manifest.version} ({manifest.kind}, "
               f"publisher {manifest.publisher or '-'})")
    click.echo(f"signature  {signer or 'none (unsigned)'} (not verified: use `verify`)")
    for component in manifest.components:
        host = ",".join(component.capabilities.host) or "-"
        click.echo(f"component  {component.id}@{component.version} world={component.world} "
                   f"host={host} operations={','.join(component.operations) or '*'}")
    for flow in manifest.flows:
        click.echo(f"flow       {flow.id} {flow.file} components="
                   f"{','.join(flow.components) or '-'} tags={','.join(flow.tags) or '-'}")
    click.echo("")
    click.echo(f"{'size':>10}  {'sha256':16}  entry")
    for name in sorted(loaded.entries):
        content = loaded.entries[name]
        click.echo(f"{len(content):>10}  {hashlib.sha256(content).hexdigest()[:16]}  {name}")


def _format_of(archive: Path) -> tuple[PackFormat, bytes]:
    """Which format ARCHIVE is, and its bytes (none read when it is over the size limit: our
    reader refuses it then)."""
    try:
        if archive.stat().st_size > DEFAULT_LIMITS.max_archive_bytes:
            return "greentic-py", b""
        data = archive.read_bytes()
    except OSError:
        return "greentic-py", b""  # our reader says what is wrong with the file
    return detect_format(data), data


def _verify_greentic(archive: Path, data: bytes, pack_format: PackFormat,
                     trust_values: tuple[str, ...], policy: str) -> None:
    try:
        trust = parse_greentic_trust(trust_values, policy)  # type: ignore[arg-type]
        if policy == "dev" and trust.configured:
            click.echo("warning: policy dev accepts Greentic packs anchored by nothing you "
                       "trust", err=True)
        checked = verify_greentic_pack(data, pack_format, trust, name=str(archive))
    except GreenticError as exc:
        click.echo(f"refused: {archive}: {exc}", err=True)
        raise SystemExit(1) from None
    summary = checked.pack.summary()
    click.echo(f"verified: {summary.pack_id} {summary.version} ({FORMAT_NAMES[pack_format]}, "
               f"{len(checked.pack.entries)} entries)")
    click.echo(f"digests    every entry matches its BLAKE3 in {checked.sbom_name}; none missing, "
               "none unlisted")
    click.echo(f"signature  {checked.signature.summary}")


def _inspect_greentic(archive: Path, data: bytes, pack_format: PackFormat,
                      as_json: bool) -> None:
    try:
        pack = read_greentic_pack(data, pack_format)
    except GreenticError as exc:
        raise _fail(exc) from None
    summary = pack.summary()
    if as_json:
        click.echo(json.dumps({"format": pack_format, "format_name": FORMAT_NAMES[pack_format],
                               "summary": msgspec.to_builtins(summary),
                               "manifest": msgspec.to_builtins(pack.current or pack.legacy)},
                              indent=2))
        return
    click.echo(f"format     {FORMAT_NAMES[pack_format]}")
    click.echo(f"pack       {summary.pack_id} {summary.version} ({summary.kind}, "
               f"publisher {summary.publisher or '-'})")
    click.echo(f"signature  {summary.signature} (not verified: use `verify`)")
    for component in summary.components:
        click.echo(f"component  {component.id}@{component.version} world={component.world}")
    for flow in summary.flows:
        click.echo(f"flow       {flow.id} entrypoints={','.join(flow.entrypoints) or '-'} "
                   f"start={flow.start or '-'}")
    click.echo(f"assets     {summary.assets}")
    click.echo("")
    methods = entry_methods(data)
    click.echo(f"{'size':>10}  {'method':8}  {'blake3':16}  entry")
    for name, content in pack.entries.items():
        click.echo(f"{len(content):>10}  {methods.get(name, '?'):8}  "
                   f"{blake3_hex(content)[:16]}  {name}")


@pack.command()
@click.option("-o", "--output", "stem", required=True,
              help="Writes STEM.key (private, mode 0600) and STEM.pub (ed25519:<base64>).")
def keygen(stem: str) -> None:
    """Make an Ed25519 signing key pair."""
    try:
        private, public, _ = write_keypair(stem)
    except GreenticError as exc:
        raise _fail(exc) from None
    click.echo(f"private key {private} (mode 0600: keep it secret)")
    click.echo(f"public key  {public}: {public.read_text().strip()}")
    click.echo("trust it with GREENTIC_TRUSTED_KEYS or `greentic pack verify --trust`")


def _registry(locator: str, insecure: bool) -> tuple[Reference, Settings, OciOptions]:
    """The parsed locator, the settings, and how to reach its registry."""
    ref = parse_reference(locator)
    settings = load_settings()
    options = OciOptions.from_settings(settings)
    if insecure:
        options = msgspec.structs.replace(options,
                                          insecure_hosts=options.insecure_hosts | {ref.host})
    return ref, settings, options


INSECURE = click.option("--insecure", is_flag=True,
                        help="Plain http to this registry (loopback ones always are; see also "
                        "GREENTIC_OCI_INSECURE).")


@pack.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("locator")
@INSECURE
def push(archive: Path, locator: str, insecure: bool) -> None:
    """Push ARCHIVE to a registry as LOCATOR (oci://host[:port]/repo:tag).

    Credentials: GREENTIC_OCI_USERNAME and GREENTIC_OCI_PASSWORD."""
    async def run() -> PushResult:
        async with RegistryClient(options) as client:
            return await client.push(ref, data, title=archive.name)

    try:
        ref, _, options = _registry(locator, insecure)
        data = archive.read_bytes()
        result = asyncio.run(run())
    except GreenticError as exc:
        raise _fail(exc) from None
    click.echo(f"pushed {ref} ({result.size} bytes)")
    click.echo(f"manifest  {result.manifest_digest}")
    click.echo(f"layer     {result.layer_digest}")
    click.echo(f"pinned    {ref.pinned(result.manifest_digest)}")
    click.echo(f'bundle    packs: {{<pack>: {{oci: "{ref}", digest: "{result.layer_digest}"}}}}')


@pack.command()
@click.argument("locator")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the pack (default <last part of the repository>.gtpack).")
@click.option("--digest", help="The layer digest (sha256:…) the pack must have.")
@click.option("--trust", "trust_values", multiple=True, envvar="GREENTIC_TRUSTED_KEYS",
              help="Verify the signature with these keys, as `verify --trust` does.")
@click.option("--policy", type=click.Choice(["strict", "dev"]), default="strict",
              show_default=True, envvar="GREENTIC_PACK_POLICY")
@INSECURE
def pull(locator: str, output: Path | None, digest: str | None,
         trust_values: tuple[str, ...], policy: str, insecure: bool) -> None:
    """Pull LOCATOR (oci://…:tag or …@sha256:…) through the cache into a .gtpack.

    Digests are always checked; the signature too when trusted keys are given. Cache:
    GREENTIC_PACK_CACHE_DIR."""
    async def run() -> PullResult:
        async with RegistryClient(options) as client:
            return await client.pull(ref, cache_dir=settings.pack_cache_dir, digest=digest,
                                     limits=limits, progress=show)

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("pull", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            ref, settings, options = _registry(locator, insecure)
            limits = PackLimits(max_archive_bytes=settings.pack_max_bytes)
            trust = (Trust(keys=_trusted(trust_values), policy=policy)  # type: ignore[arg-type]
                     if trust_values or policy == "dev" else None)
            result = asyncio.run(run())
            loaded = read_pack_file(result.path, trust=trust, limits=limits)
        except GreenticError as exc:
            raise _fail(exc) from None
    output = output or Path(f"{ref.repository.rsplit('/', 1)[-1]}.gtpack")
    _write_atomically(output, result.path.read_bytes())
    manifest = loaded.manifest
    click.echo(f"pulled {ref} → {output} ({result.size} bytes, "
               f"{'downloaded' if result.downloaded else 'from the cache'})")
    click.echo(f"layer     {result.layer_digest}")
    if loaded.signed_by:
        click.echo(f"verified: {manifest.pack_id} {manifest.version} signed by "
                   f"{loaded.signed_by}")
    else:
        click.echo(f"checked: {manifest.pack_id} {manifest.version} (digests; signature not "
                   "verified: give --trust or GREENTIC_TRUSTED_KEYS)")


async def _deploy(nats_url: str, request: DeployRequest, timeout_s: float) -> DeployReply:
    try:
        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1,
                                name="greentic-pack-deploy")
    except Exception as exc:  # nats-py raises several kinds when nobody listens
        raise GreenticError(f"cannot reach NATS at {nats_url}: {exc!r}") from None
    try:
        return await request_deploy(nc, request, timeout_s)
    finally:
        await nc.close()


@pack.command()
@click.argument("pack_id")
@click.argument("locator", required=False, default="")
@click.option("--digest", default="", help="sha256:<hex> the .gtpack file must have.")
@click.option("--nats", "nats_url", default=default_nats_url, show_default="running `greentic up`",
              help="NATS of the platform.")
@click.option("--timeout", default=60.0, show_default=True,
              help="Seconds to wait for pack-loader's answer.")
def deploy(pack_id: str, locator: str, digest: str, nats_url: str, timeout: float) -> None:
    """Make the running pack-loader serve PACK_ID (a pack of the bundle) from LOCATOR, a pack
    directory or .gtpack (default: re-read its current source); exit 1 if refused."""
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise click.BadParameter("sha256:<64 lower-case hex digits>", param_hint="--digest")
    if locator and Path(locator).exists():  # a local path: absolute, as pack-loader's cwd differs
        locator = str(Path(locator).resolve())
    try:
        reply = asyncio.run(_deploy(nats_url, DeployRequest(pack=pack_id, locator=locator,
                                                             digest=digest), timeout))
    except GreenticError as exc:
        raise _fail(exc) from None
    if not reply.ok:
        click.echo(f"refused: {reply.pack or pack_id}: {reply.error}", err=True)
        raise SystemExit(1)
    click.echo(f"deployed {reply.pack} {reply.version} (revision {reply.revision}) "
               f"from {reply.locator}")
    for flow in reply.flows:
        click.echo(f"flow       {flow.id} {flow.version[:16]}")
    for component in reply.components:
        click.echo(f"component  {component.id} {component.digest} ({component.size} bytes)")

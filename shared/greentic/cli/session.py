"""`greentic session list|show|delete`: operators inspect and reset conversations."""

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import click
import msgspec
import nats

from greentic.cli.state import default_nats_url
from greentic.config.settings import Settings, load_settings
from greentic.errors import ConfigError, StoreUnavailable, SubjectError
from greentic.runner.stores import Stores, open_stores
from greentic.session.model import Session, SessionKey, parse_session_key, session_document


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.session_backend == "memory":
        raise click.ClickException("GREENTIC_SESSION_BACKEND=memory: those sessions live inside "
                                   "the executor process; there is nothing to inspect from here")
    return settings


def _run(nats_url: str, action: Callable[[Stores, Settings], Awaitable[int]]) -> None:
    settings = _settings()

    async def main() -> int:
        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1) \
            if settings.session_backend == "jetstream" else None
        try:
            stores = await open_stores(settings, nc.jetstream() if nc else None, ensure=False)
            try:
                return await action(stores, settings)
            finally:
                await stores.close()
        finally:
            if nc is not None:
                await nc.close()

    try:
        code = asyncio.run(main())
    except (StoreUnavailable, SubjectError) as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, nats.errors.Error) as exc:
        raise click.ClickException(f"cannot reach NATS at {nats_url}: {exc!r}") from None
    sys.exit(code)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


nats_option = click.option("--nats-url", default=default_nats_url,
                           show_default="running `greentic up`",
                           help="NATS of the platform (jetstream backend).")


@click.group()
def session() -> None:
    """Inspect and reset conversation sessions (backend from GREENTIC_SESSION_BACKEND)."""


@session.command("list")
@click.option("--tenant")
@click.option("--team")
@click.option("--channel")
@nats_option
def list_sessions(tenant: str | None, team: str | None, channel: str | None,
                  nats_url: str) -> None:
    """One line per live session: KEY, turns, last update, paused node."""
    async def action(stores: Stores, settings: Settings) -> int:
        keys = await stores.sessions.list_keys(settings.env, tenant, team, channel)
        for key in keys:
            found = await stores.sessions.get(key)
            if found is None:
                continue  # expired or deleted meanwhile
            current = found[0]
            node = (current.snapshot or {}).get("node", "-")
            click.echo(f"{key.path()}  turns={current.turns}  updated={_when(current.updated_ms)}"
                       f"  paused_at={node}")
        click.echo(f"{len(keys)} session(s)", err=True)
        return 0

    _run(nats_url, action)


@session.command()
@click.argument("key")
@nats_option
def show(key: str, nats_url: str) -> None:
    """Print one session (KEY = env.tenant.team.channel.conversation) as JSON."""
    async def action(stores: Stores, parsed: SessionKey, found: tuple[Session, int]) -> None:
        document = session_document(parsed, *found)
        click.echo(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())

    _run_on_session(nats_url, key, action)


@session.command()
@click.argument("key")
@nats_option
def delete(key: str, nats_url: str) -> None:
    """Forget one session: the conversation's next message starts its flow afresh."""
    async def action(stores: Stores, parsed: SessionKey, _found: tuple[Session, int]) -> None:
        await stores.sessions.delete(parsed)
        click.echo(f"deleted {key}")

    _run_on_session(nats_url, key, action)


def _run_on_session(nats_url: str, key: str, action: Callable[
        [Stores, SessionKey, tuple[Session, int]], Awaitable[None]]) -> None:
    """`action` on the session KEY names (exit 1 saying so when there is none)."""
    async def on_session(stores: Stores, _settings: Settings) -> int:
        parsed = parse_session_key(key)
        found = await stores.sessions.get(parsed)
        if found is None:
            click.echo(f"no session {key}", err=True)
            return 1
        await action(stores, parsed, found)
        return 0

    _run(nats_url, on_session)

"""`greentic send`: talk to a running platform through its WebChat API, like a user."""

import asyncio
import sys

import aiohttp
import click

from greentic.cli.state import default_ingress_url
from greentic.providers.webchat.activity import buttons_of
from greentic.providers.webchat.client import DirectLineClient, DirectLineError


async def _send(url: str, texts: tuple[str, ...], tenant: str | None, team: str | None,
                channel: str | None, secret: str | None, wait_s: float) -> int:
    async with aiohttp.ClientSession() as session:
        client = DirectLineClient(url, session)
        if not secret and not (tenant and team and channel):
            open_channels = await client.anonymous_channels()
            if not open_channels:
                click.echo("no anonymous WebChat channel; pass --tenant/--team/--channel and "
                           "--secret", err=True)
                return 2
            first = open_channels[0]
            tenant, team, channel = (tenant or first["tenant"], team or first["team"],
                                     channel or first["channel"])
        await client.open(tenant or "", team or "", channel or "", secret)
        for text in texts:
            click.echo(f"you> {text}")
            message_id = await client.post(text)
            replies = await client.replies_to(message_id, wait_s=wait_s)
            if not replies:
                click.echo(f"no reply within {wait_s:g}s", err=True)
                return 1
            for reply in replies:
                buttons = " ".join(f"[{b.title}]" for b in buttons_of(reply))
                click.echo(f"bot> {reply.text or ''}" + (f"  {buttons}" if buttons else ""))
    return 0


@click.command()
@click.argument("texts", nargs=-1, required=True)
@click.option("--url", default=default_ingress_url, show_default="running `greentic up`",
              help="Ingress base URL.")
@click.option("--tenant", help="Tenant of the WebChat channel (default: first anonymous one).")
@click.option("--team")
@click.option("--channel")
@click.option("--secret", help="Direct Line secret of the channel (instead of anonymous).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for replies.")
def send(texts: tuple[str, ...], url: str, tenant: str | None, team: str | None,
         channel: str | None, secret: str | None, timeout: float) -> None:
    """Send each TEXT in one conversation and print the bot's replies (exit 1 if none)."""
    try:
        code = asyncio.run(_send(url, texts, tenant, team, channel, secret, timeout))
    except (aiohttp.ClientError, DirectLineError) as exc:
        click.echo(f"greentic send: {exc}", err=True)
        code = 1
    sys.exit(code)

"""`greentic provider test COMPONENT PAYLOAD.json`: a provider component's ingress and egress on
a recorded webhook, locally — no NATS, no network: it prints the messages the webhook becomes
and the HTTP requests the reply to each would send."""

import asyncio
import json
from pathlib import Path
from typing import Any

import click
import msgspec

from greentic.component import ComponentEngine, ComponentHost
from greentic.component.build import NoSecrets, default_cache_dir
from greentic.component.provider import Button as ProviderButton
from greentic.component.provider import (
    ChannelCtx,
    Done,
    Fetch,
    IngressError,
    OutboundMessage,
    ProviderHost,
    http_in,
)
from greentic.errors import GreenticError
from greentic.state import MemoryStateStore
from greentic.types.component import ComponentCapabilities, ComponentManifest


class GivenSecrets:
    """`--secret NAME=VALUE` pairs, for every channel."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, _channel: ChannelCtx, name: str) -> bytes | None:
        value = self.values.get(name)
        return value.encode() if value is not None else None


def _recording(path: Path) -> dict[str, Any]:
    """A recorded request `{method?, path?, headers?, body}` (body: JSON or text), or — any
    other JSON — the body of a POST."""
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: not a readable JSON file: {exc}") from None
    if isinstance(recorded, dict) and "body" in recorded and set(recorded) <= {
            "method", "path", "headers", "body", "query"}:
        body = recorded["body"]
        return {"method": str(recorded.get("method", "POST")),
                "path": str(recorded.get("path", "/webhooks/t/m/c")),
                "headers": {str(k): str(v) for k, v in (recorded.get("headers") or {}).items()},
                "query": recorded.get("query"),
                "body": body if isinstance(body, str) else json.dumps(body)}
    return {"method": "POST", "path": "/webhooks/t/m/c", "query": None,
            "headers": {"Content-Type": "application/json"}, "body": path.read_text()}


def _pairs(values: tuple[str, ...], what: str, separator: str) -> dict[str, str]:
    found = {}
    for value in values:
        name, sep, rest = value.partition(separator)
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r}: expected NAME{separator}VALUE", param_hint=what)
        found[name.strip()] = rest.strip() if separator == ":" else rest
    return found


def _show(label: str, value: msgspec.Struct) -> None:
    click.echo(f"{label} {msgspec.json.encode(value).decode()}")


async def _run(provider: ProviderHost, loaded: Any, channel: ChannelCtx,
               recorded: dict[str, Any], reply: str | None) -> int:
    incoming = http_in(recorded["method"], recorded["path"], list(recorded["headers"].items()),
                       recorded["body"].encode(), query=recorded["query"])
    if isinstance(incoming, IngressError):
        click.echo(f"refused     {incoming.status} {incoming.kind}: {incoming.message}")
        return 1
    outcome = await provider.provider_webhook(loaded, channel, incoming, [])
    if isinstance(outcome, IngressError):
        click.echo(f"refused     {outcome.status} {outcome.kind}: {outcome.message}")
        return 1
    if isinstance(outcome, Fetch):
        for wanted in outcome.requests:
            _show("would fetch", wanted.request)
        click.echo("(the webhook needs those answers first; nothing is fetched here)")
        return 0
    assert isinstance(outcome, Done)
    answer = outcome.result.response
    click.echo("webhook     " + (f"{answer.status} {answer.body or ''}" if answer else
                                 '200 {"ok": true}'))
    for index, message in enumerate(outcome.result.messages, start=1):
        _show("message    ", message)
        outgoing = OutboundMessage(id=f"reply-{index}", conversation=message.conversation,
                                   thread=message.thread,
                                   text=reply if reply is not None else f"echo: {message.text}",
                                   buttons=[ProviderButton("Yes", "yes")])
        plan = await provider.provider_encode(loaded, channel, outgoing, [])
        if isinstance(plan, Fetch):
            for wanted in plan.requests:
                _show("would fetch", wanted.request)
        else:
            for request in plan.requests:
                _show("would send ", request)
    return 0


@click.group()
def provider() -> None:
    """Try messaging-provider components."""


@provider.command("test")
@click.argument("component", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("payload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_json", default="{}", show_default=True,
              help="The channel's (non-secret) config, as JSON.")
@click.option("--secret", "secrets", multiple=True, metavar="NAME=VALUE",
              help="A channel secret the component may read (repeatable).")
@click.option("--header", "headers", multiple=True, metavar="NAME:VALUE",
              help="A request header to add to the recording (repeatable).")
@click.option("--reply", help="The reply text to render (default: `echo: <message text>`).")
def test_command(component: Path, payload: Path, config_json: str, secrets: tuple[str, ...],
                 headers: tuple[str, ...], reply: str | None) -> None:
    """Run COMPONENT's ingress on the webhook recorded in PAYLOAD.json, then its egress on a
    reply to each message; prints the messages and the requests it would send (exit 1 when
    the webhook is refused)."""
    try:
        config = json.loads(config_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--config") from None
    given = _pairs(secrets, "--secret", "=")
    recorded = _recording(payload)
    recorded["headers"].update(_pairs(headers, "--header", ":"))
    host = ComponentHost(ComponentEngine.shared(default_cache_dir()), MemoryStateStore(),
                         NoSecrets(), threads=1)
    try:
        loaded = host.load(ComponentManifest(
            id=component.stem, world="provider", capabilities=ComponentCapabilities(
                host=["secrets"], secrets=sorted(given))), component.read_bytes())
        channel = ChannelCtx("dev", "test", "test", "test", component.stem, json.dumps(config))
        code = asyncio.run(_run(ProviderHost(host, GivenSecrets(given)), loaded, channel,
                                recorded, reply))
    except GreenticError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        host.close()
    raise SystemExit(code)

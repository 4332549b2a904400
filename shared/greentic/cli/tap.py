"""`greentic tap`: one readable line per message on the platform's subjects (no consumer state)."""

import asyncio
import os
import time

import click
import msgspec
import nats

from greentic.bus import headers as h
from greentic.bus.subjects import ROOT, tenant_filters
from greentic.cli.state import default_nats_url
from greentic.errors import EnvelopeError, SubjectError
from greentic.types.envelope import decode_envelope

ALL_HOPS = f"{ROOT}.>"


def describe(subject: str, headers: dict[str, str] | None, data: bytes) -> tuple[str, str, str]:
    """(message id, conversation, text) of a message on the wire, garbage included."""
    headers = headers or {}
    try:
        envelope = decode_envelope(data)
    except EnvelopeError:
        text = data[:80].decode(errors="replace")
        unreadable = f"<unreadable> {text!r}"
        return headers.get(h.MSG_ID, "?"), headers.get(h.CONVERSATION, "?"), unreadable
    text = envelope.text
    if envelope.buttons:
        text += "  " + " ".join(f"[{b.title}]" for b in envelope.buttons)
    return envelope.id, envelope.conversation, text


def format_line(subject: str, headers: dict[str, str] | None, data: bytes) -> str:
    msg_id, conversation, text = describe(subject, headers, data)
    stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
    line = f"{stamp} {subject} id={msg_id} conv={conversation} {text!r}"
    if headers and h.DEAD_REASON in headers:
        line += f" reason={headers[h.DEAD_REASON]!r}"
    return line


class TapRefused(click.ClickException):
    """NATS refused a subscription (the user's permissions do not cover it)."""


async def _tap(subjects: list[str], nats_url: str, conversation: str | None, count: int | None,
               as_json: bool) -> None:
    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        if "permissions violation" in str(exc).lower():
            refused.append(str(exc))

    # in a pod, the service's credentials file (GREENTIC_NATS_CREDS) is at hand
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, name="greentic-tap",
                            user_credentials=os.environ.get("GREENTIC_NATS_CREDS") or None,
                            error_cb=on_error)
    seen = 0
    done = asyncio.Event()

    async def on_message(msg: nats.aio.msg.Msg) -> None:
        nonlocal seen
        headers = msg.headers or {}
        if conversation and headers.get(h.CONVERSATION) != conversation:
            return
        if as_json:
            print(msgspec.json.encode({"subject": msg.subject, "headers": headers,
                                       "data": msg.data.decode(errors="replace")}).decode(),
                  flush=True)
        else:
            print(format_line(msg.subject, headers, msg.data), flush=True)
        seen += 1
        if count is not None and seen >= count:
            done.set()

    try:
        for subject in subjects:
            await nc.subscribe(subject, cb=on_message)
        # the server answers a refused SUB with -ERR before the next PONG; but nats-py 2.16
        # writes a flush's PING straight to the socket, ahead of commands still buffered, so
        # only the second round trip is sure to follow the SUBs
        await nc.flush()
        await nc.flush()
        if refused:
            raise TapRefused(
                f"NATS refused the subscription: {refused[0]}. This NATS user may not read "
                f"{', '.join(subjects)}; a tenant-scoped user taps with --tenant (see "
                "`greentic nats-permissions`).")
        click.echo(f"tapping {', '.join(subjects)} on {nats_url} (Ctrl-C to stop)", err=True)
        await done.wait()
    finally:
        await nc.close()


@click.command()
@click.argument("subject", required=False)
@click.option("--tenant", help="Only this tenant's messages: subscribes to its subjects only "
              "(so a NATS user limited to them can tap).")
@click.option("--env", "env", envvar="GREENTIC_ENV", default="dev", show_default=True,
              help="Environment token of the subjects (with --tenant).")
@click.option("--conversation", help="Only this conversation's messages.")
@click.option("--nats-url", default=default_nats_url, show_default="running `greentic up`")
@click.option("--count", type=int, help="Exit after this many messages.")
@click.option("--json", "as_json", is_flag=True, help="Print subject, headers and body as JSON.")
def tap(subject: str | None, tenant: str | None, env: str, conversation: str | None,
        nats_url: str, count: int | None, as_json: bool) -> None:
    """Print every message on SUBJECT (default: all hops of every tenant, or of --tenant's)
    as one readable line."""
    if subject and tenant:
        raise click.UsageError("give either SUBJECT or --tenant, not both")
    try:
        subjects = tenant_filters(env, tenant) if tenant else [subject or ALL_HOPS]
    except SubjectError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        asyncio.run(_tap(subjects, nats_url, conversation, count, as_json))
    except KeyboardInterrupt:
        pass


@click.command("nats-permissions")
@click.option("--tenant", required=True, help="The tenant the NATS user may tap.")
@click.option("--env", "env", envvar="GREENTIC_ENV", default="dev", show_default=True)
@click.option("--user", default=None, help="User name in the printed block (default tap-TENANT).")
def nats_permissions(tenant: str, env: str, user: str | None) -> None:
    """Print the nats-server `authorization` user entry of a user that may only run
    `greentic tap --tenant TENANT` (subscribe to that tenant's subjects; publish nothing)."""
    try:
        print(permissions_block(env, tenant, user or f"tap-{tenant}"))
    except SubjectError as exc:
        raise click.BadParameter(str(exc)) from None


def permissions_block(env: str, tenant: str, user: str) -> str:
    """A nats-server config `users` entry (password to fill in) limited to one tenant's tap."""
    allow = ", ".join(f'"{s}"' for s in tenant_filters(env, tenant))
    return (f"# nats-server.conf: inside authorization {{ users: [ ... ] }}\n"
            f"# this user may only run: greentic tap --tenant {tenant} --env {env}\n"
            f'{{ user: "{user}", password: "<set a password>", permissions: {{\n'
            f'    publish: {{ deny: [">"] }}\n'
            f"    subscribe: {{ allow: [{allow}] }}\n"
            f"}} }}")

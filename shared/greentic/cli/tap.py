"""`greentic tap`: one readable line per message on the platform's subjects (no consumer state)."""

import asyncio
import os
import time

import click
import msgspec
import nats

from greentic.bus import headers as h
from greentic.cli.state import default_nats_url
from greentic.errors import EnvelopeError
from greentic.types.envelope import decode_envelope


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


async def _tap(subject: str, nats_url: str, tenant: str | None, conversation: str | None,
               count: int | None, as_json: bool) -> None:
    # in a pod, the service's credentials file (GREENTIC_NATS_CREDS) is at hand
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, name="greentic-tap",
                            user_credentials=os.environ.get("GREENTIC_NATS_CREDS") or None)
    seen = 0
    done = asyncio.Event()

    async def on_message(msg: nats.aio.msg.Msg) -> None:
        nonlocal seen
        headers = msg.headers or {}
        if tenant and headers.get(h.TENANT) != tenant:
            return
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

    await nc.subscribe(subject, cb=on_message)
    await nc.flush()
    click.echo(f"tapping {subject} on {nats_url} (Ctrl-C to stop)", err=True)
    try:
        await done.wait()
    finally:
        await nc.close()


@click.command()
@click.argument("subject", default="greentic.messaging.>")
@click.option("--tenant", help="Only this tenant's messages.")
@click.option("--conversation", help="Only this conversation's messages.")
@click.option("--nats-url", default=default_nats_url, show_default="running `greentic up`")
@click.option("--count", type=int, help="Exit after this many messages.")
@click.option("--json", "as_json", is_flag=True, help="Print subject, headers and body as JSON.")
def tap(subject: str, tenant: str | None, conversation: str | None, nats_url: str,
        count: int | None, as_json: bool) -> None:
    """Print every message on SUBJECT (default: all hops) as one readable line."""
    try:
        asyncio.run(_tap(subject, nats_url, tenant, conversation, count, as_json))
    except KeyboardInterrupt:
        pass

"""Bot Framework activities (the Direct Line wire format) ↔ envelopes."""

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from greentic.types.envelope import Button, Envelope
from greentic.types.ids import new_id
from greentic.types.tenant import TenantCtx

PROVIDER = "webchat"
MAX_TEXT = 8000


class ChannelAccount(msgspec.Struct, omit_defaults=True):
    id: str = ""
    name: str | None = None
    role: str | None = None


class ConversationAccount(msgspec.Struct, omit_defaults=True):
    id: str


class CardAction(msgspec.Struct, omit_defaults=True):
    type: str
    title: str = ""
    value: Any = None


class SuggestedActions(msgspec.Struct, omit_defaults=True):
    actions: list[CardAction] = []


class Activity(msgspec.Struct, omit_defaults=True, rename="camel"):
    """The fields of a Bot Framework Activity that WebChat conversations use."""

    type: str
    id: str | None = None
    timestamp: str | None = None
    from_: ChannelAccount | None = msgspec.field(default=None, name="from")
    conversation: ConversationAccount | None = None
    text: str | None = None
    value: Any = None
    reply_to_id: str | None = None
    suggested_actions: SuggestedActions | None = None
    attachments: list[dict[str, Any]] | None = None
    channel_data: dict[str, Any] | None = None
    locale: str | None = None
    channel_id: str | None = None


decode_activity = msgspec.json.Decoder(Activity).decode
encode_activity = msgspec.json.Encoder().encode


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds")


def activity_id(conversation: str, activity: Activity) -> str:
    """The message id of a posted activity: derived from the client's own activity id when it
    sends one, so that a retried POST is the same message (deduplicated), else a new id."""
    client_id = (activity.channel_data or {}).get("clientActivityID")
    if isinstance(client_id, str) and client_id:
        return "c" + hashlib.sha256(f"{conversation}\0{client_id}".encode()).hexdigest()[:25]
    return new_id()


def envelope_from_activity(activity: Activity, *, message_id: str, ctx: TenantCtx, channel: str,
                           conversation: str) -> Envelope:
    """A user's posted activity → inbound envelope (the raw activity kept for the flow)."""
    text = activity.text or ""
    if not text and isinstance(activity.value, str):
        text = activity.value  # a clicked button posts its value
    sender = activity.from_.id if activity.from_ and activity.from_.id else "anonymous"
    return Envelope(id=message_id, ctx=ctx, channel=channel, provider=PROVIDER,
                    conversation=conversation, sender=sender, text=text[:MAX_TEXT],
                    value=activity.value, created_ms=int(time.time() * 1000),
                    raw=msgspec.to_builtins(activity))


def user_echo(activity: Activity, envelope: Envelope) -> Activity:
    """The user's activity as stored in the transcript (clients match it by clientActivityID)."""
    return msgspec.structs.replace(
        activity, id=envelope.id, timestamp=_iso(envelope.created_ms), channel_id=PROVIDER,
        conversation=ConversationAccount(envelope.conversation),
        from_=ChannelAccount(id=envelope.sender, role="user",
                             name=activity.from_.name if activity.from_ else None))


def bot_activity(envelope: Envelope, bot_name: str = "Greentic") -> Activity:
    """An outbound envelope → the bot's message activity, buttons as suggested actions."""
    actions = [CardAction(type="imBack", title=b.title, value=b.value or b.title)
               for b in envelope.buttons]
    return Activity(
        type="message", id=envelope.id, timestamp=_iso(envelope.created_ms or
                                                        int(time.time() * 1000)),
        from_=ChannelAccount(id="bot", name=bot_name, role="bot"),
        conversation=ConversationAccount(envelope.conversation), text=envelope.text,
        reply_to_id=envelope.reply_to, channel_id=PROVIDER,
        suggested_actions=SuggestedActions(actions) if actions else None,
        attachments=[msgspec.to_builtins(a) for a in envelope.attachments] or None)


def buttons_of(activity: Activity) -> list[Button]:
    """Suggested actions of an activity as buttons (for clients and tests)."""
    actions = activity.suggested_actions.actions if activity.suggested_actions else []
    return [Button(title=a.title, value=str(a.value)) for a in actions]

"""egress: delivers each reply through its provider's sender; acked after the provider took it."""

from typing import Protocol

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from greentic.errors import DeadLetter
from greentic.providers.webchat.activity import PROVIDER as WEBCHAT
from greentic.providers.webchat.activity import bot_activity
from greentic.providers.webchat.transcript import Transcript
from greentic.service.hop import HopService, read_envelope
from greentic.types.envelope import Envelope


class Sender(Protocol):
    """Delivers an outbound envelope to one provider; must be idempotent by envelope id."""

    async def send(self, envelope: Envelope) -> None: ...


class WebChatSender:
    """Appends the bot's activity to the conversation's transcript (deduplicated by id)."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def send(self, envelope: Envelope) -> None:
        transcript = Transcript(self.js, envelope.ctx, envelope.channel, envelope.conversation)
        await transcript.append(bot_activity(envelope))


class EgressService(HopService):
    name = "egress"
    stage = "egress"

    async def prepare(self) -> None:
        self.senders: dict[str, Sender] = {WEBCHAT: WebChatSender(self.js)}

    async def handle(self, msg: Msg) -> None:
        envelope = read_envelope(msg.subject, msg.data)
        sender = self.senders.get(envelope.provider)
        if sender is None:
            raise DeadLetter(f"no sender for provider {envelope.provider!r}")
        await sender.send(envelope)

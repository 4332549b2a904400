"""egress: delivers each reply through its provider's sender; acked after the provider took it."""

import asyncio
from typing import Any, Protocol

import aiohttp
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind

from greentic.config.bundle import Bundle
from greentic.config.settings import Settings
from greentic.errors import ConfigError, DeadLetter
from greentic.hosting.components import follow_provider_components
from greentic.hosting.hop import HopService, read_envelope
from greentic.providers import slack, teams, telegram, whatsapp
from greentic.providers.channel import ChannelInstance
from greentic.providers.components import ComponentProviders, ComponentSender, component_channels
from greentic.providers.delivery import already_sent, mark_sent, sent_log
from greentic.providers.ratelimit import DEFAULT_RATES, SendPacer
from greentic.providers.webchat.activity import PROVIDER as WEBCHAT
from greentic.providers.webchat.activity import bot_activity
from greentic.providers.webchat.transcript import Transcript
from greentic.telemetry.metrics import MESSAGES_OUT
from greentic.telemetry.tracing import span
from greentic.types.envelope import Envelope

PACING_HOLD_S = 300.0
"""A reply waits in egress this long at most for its channel's send rate (its delivery is kept
alive meanwhile, costing no attempt); a longer queue is handed back to JetStream."""


class Sender(Protocol):
    """Delivers an outbound envelope to one provider."""

    async def send(self, envelope: Envelope, channel: ChannelInstance) -> None: ...


class WebChatSender:
    """Appends the bot's activity to the conversation's transcript (deduplicated by id)."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def send(self, envelope: Envelope, channel: ChannelInstance) -> None:
        transcript = Transcript(self.js, envelope.ctx, envelope.channel, envelope.conversation)
        await transcript.append(bot_activity(envelope))


class EgressService(HopService):
    name = "egress"
    stage = "egress"

    def __init__(self, settings: Settings, bundle: Bundle) -> None:
        super().__init__(settings)
        self.channels = {(ctx.tenant, ctx.team, channel_id): ChannelInstance(
            ctx, channel_id, channel.provider, dict(channel.config))
            for ctx, channel_id, channel in bundle.channels(settings.env)}
        self.bundle = bundle
        self.skipped_duplicates = 0
        self.pacer = SendPacer(max_wait_s=PACING_HOLD_S)
        self.providers: ComponentProviders | None = None
        self._follow: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        self.http = aiohttp.ClientSession()
        self.sent = await sent_log(self.js, self.settings.nats_replicas)
        self.senders: dict[str, Sender] = {
            WEBCHAT: WebChatSender(self.js),
            telegram.KIND: telegram.TelegramSender(self.http),
            slack.KIND: slack.SlackSender(self.http),
            whatsapp.KIND: whatsapp.WhatsAppSender(self.http),
            teams.KIND: teams.TeamsSender(self.http),
        }
        self.component_sender: ComponentSender | None = None
        channels = component_channels(self.bundle, self.settings.env)
        if channels:
            registry, self._follow = await follow_provider_components(self.settings, self.js)
            self.providers = ComponentProviders(registry, channels)
            self.component_sender = ComponentSender(self.providers, self.http)

    async def stop(self) -> None:
        await super().stop()
        if self._follow is not None:
            self._follow.cancel()
        if hasattr(self, "http"):
            await self.http.close()

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "skipped_duplicates": self.skipped_duplicates,
                "rate_limited_wait_s": round(self.pacer.waited_s, 3),
                **({"provider_components": len(self.providers.registry),
                    "provider_component_failures": dict(self.providers.failures)}
                   if self.providers else {})}

    async def handle(self, msg: Msg) -> None:
        envelope = read_envelope(msg.subject, msg.data)
        sender = self.senders.get(envelope.provider) or (
            self.component_sender if "/" in envelope.provider else None)
        if sender is None:
            raise DeadLetter(f"no sender for provider {envelope.provider!r}")
        channel = self.channels.get((envelope.ctx.tenant, envelope.ctx.team, envelope.channel))
        if channel is None:
            raise DeadLetter(f"channel {envelope.channel!r} of tenant {envelope.ctx.tenant!r} "
                             "is not in the bundle")
        attributes = {"greentic.provider": envelope.provider, "greentic.channel": channel.channel,
                      "greentic.tenant": envelope.ctx.tenant, "messaging.message.id": envelope.id}
        with span(f"send {envelope.provider}", kind=SpanKind.CLIENT, attributes=attributes):
            if envelope.provider == WEBCHAT:  # the transcript deduplicates by id itself
                await sender.send(envelope, channel)
            elif await already_sent(self.sent, envelope.id):
                self.skipped_duplicates += 1
                return
            else:
                rate = float(channel.config.get("send_rate_per_s",
                                                DEFAULT_RATES.get(envelope.provider, 0)))
                await self.pacer.wait_turn(f"{envelope.ctx.tenant}/{envelope.ctx.team}/"
                                           f"{envelope.channel}", rate)
                try:
                    await sender.send(envelope, channel)
                except ConfigError as exc:
                    raise DeadLetter(str(exc)) from None
                await mark_sent(self.sent, envelope.id)
        MESSAGES_OUT.add(1, {"provider": envelope.provider, "tenant": envelope.ctx.tenant,
                             "channel": envelope.channel})

"""Publishing what users said: the one way ingress hands a message to the platform."""

from nats.js import JetStreamContext

from greentic.bus import headers as h
from greentic.bus.subjects import message_subject
from greentic.telemetry.metrics import MESSAGES_IN
from greentic.types.envelope import Envelope, encode_envelope


async def publish_inbound(js: JetStreamContext, envelope: Envelope) -> None:
    """Publish to `greentic.messaging.ingress.…` and return once JetStream has stored it."""
    await js.publish(message_subject("ingress", envelope.ctx, envelope.channel),
                     encode_envelope(envelope), headers=h.envelope_headers(envelope))
    MESSAGES_IN.add(1, {"provider": envelope.provider, "tenant": envelope.ctx.tenant,
                        "channel": envelope.channel})

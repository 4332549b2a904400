"""router: binds each inbound message to its tenant's flow and passes it to the executors, on
the routed partition its conversation hashes to."""

import msgspec
from nats.aio.msg import Msg

from greentic.bus import headers as h
from greentic.bus.subjects import conversation_token, routed_subject
from greentic.config.bundle import Bundle
from greentic.config.settings import Settings
from greentic.errors import DeadLetter
from greentic.hosting.hop import HopService, read_envelope
from greentic.types.envelope import Envelope, encode_envelope


def route(bundle: Bundle, subject: str, data: bytes) -> Envelope:
    """Decode and bind to a flow; anything that can never be routed raises DeadLetter."""
    envelope = read_envelope(subject, data)
    flow = bundle.flow_for(envelope.ctx, envelope.channel)
    if flow is None:
        raise DeadLetter(f"no flow for tenant {envelope.ctx.tenant!r} team "
                         f"{envelope.ctx.team!r} channel {envelope.channel!r} in the bundle")
    return msgspec.structs.replace(envelope, flow=flow, raw=None)


class RouterService(HopService):
    name = "router"
    stage = "ingress"

    def __init__(self, settings: Settings, bundle: Bundle) -> None:
        super().__init__(settings)
        self.bundle = bundle

    async def handle(self, msg: Msg) -> None:
        routed = route(self.bundle, msg.subject, msg.data)
        headers = h.envelope_headers(routed)
        subject = routed_subject(routed.ctx, routed.channel,
                                 conversation_token(routed.conversation), self.settings.partitions)
        await self.js.publish(subject, encode_envelope(routed), headers=headers)

"""A WebChat conversation's transcript: activities in the GREENTIC_WEBCHAT stream.

Egress appends bot activities, ingress appends the user's; ingress reads them back for
`GET …/activities?watermark=` and the WebSocket stream. The watermark is the stream
sequence of the last activity returned, so any ingress replica can serve any client.
"""

from collections.abc import AsyncIterator

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from greentic.bus.headers import MSG_ID
from greentic.bus.subjects import webchat_activity_subject
from greentic.bus.topology import WEBCHAT_STREAM
from greentic.providers.webchat.activity import Activity, decode_activity, encode_activity
from greentic.types.tenant import TenantCtx

PAGE_SIZE = 100


class Transcript:
    """Read and append one conversation's activities."""

    def __init__(self, js: JetStreamContext, ctx: TenantCtx, channel: str, conversation: str):
        self.js = js
        self.subject = webchat_activity_subject(ctx, channel, conversation)

    async def append(self, activity: Activity) -> None:
        """Store an activity; a repeated id within the duplicate window is stored once."""
        await self.js.publish(self.subject, encode_activity(activity),
                              headers={MSG_ID: activity.id or ""})

    async def read(self, watermark: int) -> tuple[list[Activity], int]:
        """Activities after `watermark`, and the new watermark."""
        activities: list[Activity] = []
        seq = watermark + 1
        while len(activities) < PAGE_SIZE:
            try:
                raw = await self.js.get_msg(WEBCHAT_STREAM, seq=seq, subject=self.subject,
                                            next=True)
            except NotFoundError:
                break
            activities.append(decode_activity(raw.data))
            watermark = raw.seq
            seq = raw.seq + 1
        return activities, watermark

    async def follow(self, watermark: int | None) -> AsyncIterator[tuple[Activity, int]]:
        """Activities after `watermark` (all when None), then new ones as they arrive."""
        config = (ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                 opt_start_seq=watermark + 1) if watermark is not None
                  else ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        sub = await self.js.subscribe(self.subject, stream=WEBCHAT_STREAM, ordered_consumer=True,
                                      config=config)
        try:
            async for msg in sub.messages:
                yield decode_activity(msg.data), msg.metadata.sequence.stream
        finally:
            await sub.unsubscribe()

"""JetStream streams, consumers and buckets, created idempotently by whichever service starts."""

from typing import NamedTuple

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

from greentic.bus.subjects import DEADLETTER_PREFIX, WEBCHAT_PREFIX, Stage, stage_filter

log = structlog.get_logger(__name__)

DAY = 24 * 3600
DUPLICATE_WINDOW_S = 120.0
FLOWS_BUCKET = "greentic-flows"
COMPONENT_INDEX_BUCKET = "greentic-component-index"
"""KV: `{env}.{tenant}.{pack}.{component}` → manifest + sha256 digest of the component bytes."""
COMPONENTS_OBJECT_STORE = "greentic-components"
"""Object store: component bytes, object name = sha256 digest (immutable, shared by tenants)."""


class Hop(NamedTuple):
    """A stream one service reads from, and the durable consumer its replicas share."""

    stage: Stage
    stream: str
    consumer: str


HOPS: dict[Stage, Hop] = {
    "ingress": Hop("ingress", "GREENTIC_INGRESS", "router"),
    "routed": Hop("routed", "GREENTIC_ROUTED", "executor"),
    "egress": Hop("egress", "GREENTIC_EGRESS", "egress"),
}
DEADLETTER_STREAM = "GREENTIC_DEADLETTER"
WEBCHAT_STREAM = "GREENTIC_WEBCHAT"


def stream_configs() -> list[StreamConfig]:
    """Every stream of the platform (the README's subject table lists the same)."""
    common = dict(storage=StorageType.FILE, retention=RetentionPolicy.LIMITS,
                  discard=DiscardPolicy.OLD, duplicate_window=DUPLICATE_WINDOW_S)
    streams = [StreamConfig(name=hop.stream, subjects=[stage_filter(hop.stage)], max_age=DAY,
                            **common) for hop in HOPS.values()]
    streams.append(StreamConfig(name=DEADLETTER_STREAM, subjects=[f"{DEADLETTER_PREFIX}.>"],
                                max_age=14 * DAY, **common))
    streams.append(StreamConfig(name=WEBCHAT_STREAM, subjects=[f"{WEBCHAT_PREFIX}.>"],
                                max_age=DAY, allow_direct=True, **common))
    return streams


def consumer_config(hop: Hop, *, ack_wait_s: float, max_deliver: int) -> ConsumerConfig:
    """The durable pull consumer shared by every replica of the service reading `hop`."""
    return ConsumerConfig(
        durable_name=hop.consumer,
        filter_subject=stage_filter(hop.stage),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        max_ack_pending=1024,
    )


async def ensure_streams(js: JetStreamContext) -> None:
    """Create or update every stream and bucket; safe to run from every service at once."""
    for config in stream_configs():
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)  # exists with an older configuration
    await js.create_key_value(KeyValueConfig(bucket=FLOWS_BUCKET, history=5,
                                             storage=StorageType.FILE))
    await js.create_key_value(KeyValueConfig(bucket=COMPONENT_INDEX_BUCKET, history=5,
                                             storage=StorageType.FILE))
    # nats-py overwrites config.bucket with the `bucket` argument: pass both
    await js.create_object_store(COMPONENTS_OBJECT_STORE, config=ObjectStoreConfig(
        bucket=COMPONENTS_OBJECT_STORE, storage=StorageType.FILE))


async def ensure_consumer(js: JetStreamContext, hop: Hop, *, ack_wait_s: float,
                          max_deliver: int) -> None:
    """Create or update the durable consumer of `hop` (settings may have changed)."""
    await js.add_consumer(hop.stream, consumer_config(hop, ack_wait_s=ack_wait_s,
                                                      max_deliver=max_deliver))

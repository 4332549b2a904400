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
from nats.js.kv import KeyValue

from greentic.bus.subjects import DEADLETTER_PREFIX, WEBCHAT_PREFIX, Stage, stage_filter
from greentic.errors import GreenticError

log = structlog.get_logger(__name__)

DAY = 24 * 3600
DUPLICATE_WINDOW_S = 600.0  # Slack retries a delivery after 1 and 5 minutes
FLOWS_BUCKET = "greentic-flows"
SESSIONS_BUCKET = "greentic-sessions"
"""Sessions, `{env}.{tenant}.{team}.{channel}.{conversation}`; max_age = idle expiry."""
STATE_BUCKET = "greentic-state"
"""Flow/component state, `{env}.{tenant}.{team}.{scope}.{owner}.{name}`; no expiry."""
COMPONENT_INDEX_BUCKET = "greentic-component-index"
"""KV: `{env}.{tenant}.{pack}.{component}` → manifest + sha256 digest of the component bytes."""
COMPONENTS_OBJECT_STORE = "greentic-components"
"""Object store: component bytes, object name = sha256 digest (immutable, shared by tenants)."""
PACK_VERSIONS_BUCKET = "greentic-pack-versions"
"""KV: `{env}.{tenant}.{pack}.{revision}` → every flow and component document of one pack
revision (immutable); `{env}.{tenant}.{pack}.history` → the kept revisions, oldest first."""
PACK_DEPLOYMENTS_BUCKET = "greentic-pack-deployments"
"""KV: `{env}.{pack}` → the locator (and digest pin) `greentic pack deploy` put in place of
the bundle's path; pack-loader reads it at start."""


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


def stream_configs(replicas: int = 1) -> list[StreamConfig]:
    """Every stream of the platform (the README's subject table lists the same).

    GREENTIC_ROUTED is a work queue: an acked message leaves the stream, so the first message
    on a conversation's routed subject is always the oldest one not yet handled (executors
    read it with a direct get to keep each conversation in order, see runner/turn_order.py).
    """
    common = dict(storage=StorageType.FILE, discard=DiscardPolicy.OLD,
                  duplicate_window=DUPLICATE_WINDOW_S, num_replicas=replicas)
    streams = [StreamConfig(name=hop.stream, subjects=[stage_filter(hop.stage)], max_age=DAY,
                            retention=RetentionPolicy.LIMITS, **common)
               for hop in HOPS.values() if hop.stage != "routed"]
    routed = HOPS["routed"]
    streams.insert(1, StreamConfig(name=routed.stream, subjects=[stage_filter(routed.stage)],
                                   max_age=DAY, retention=RetentionPolicy.WORK_QUEUE,
                                   allow_direct=True, **common))
    streams.append(StreamConfig(name=DEADLETTER_STREAM, subjects=[f"{DEADLETTER_PREFIX}.>"],
                                max_age=14 * DAY, retention=RetentionPolicy.LIMITS, **common))
    streams.append(StreamConfig(name=WEBCHAT_STREAM, subjects=[f"{WEBCHAT_PREFIX}.>"],
                                max_age=DAY, allow_direct=True, retention=RetentionPolicy.LIMITS,
                                **common))
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


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update every stream and bucket with `replicas` copies (GREENTIC_NATS_REPLICAS);
    safe to run from every service at once."""
    for config in stream_configs(replicas):
        try:
            await js.add_stream(config)
        except BadRequestError:
            try:
                await js.update_stream(config)  # exists with an older configuration
            except BadRequestError as exc:
                await _replace_drained_stream(js, config, exc)
    await js.create_key_value(KeyValueConfig(bucket=FLOWS_BUCKET, history=5,
                                             storage=StorageType.FILE, replicas=replicas))
    await js.create_key_value(KeyValueConfig(bucket=COMPONENT_INDEX_BUCKET, history=5,
                                             storage=StorageType.FILE, replicas=replicas))
    for bucket in (PACK_VERSIONS_BUCKET, PACK_DEPLOYMENTS_BUCKET):
        await js.create_key_value(KeyValueConfig(bucket=bucket, history=1,
                                                 storage=StorageType.FILE, replicas=replicas))
    # nats-py overwrites config.bucket with the `bucket` argument: pass both
    await js.create_object_store(COMPONENTS_OBJECT_STORE, config=ObjectStoreConfig(
        bucket=COMPONENTS_OBJECT_STORE, storage=StorageType.FILE, replicas=replicas))


async def _replace_drained_stream(js: JetStreamContext, config: StreamConfig,
                                  refused: BadRequestError) -> None:
    """A stream whose retention changed (GREENTIC_ROUTED became a work queue) cannot be updated
    in place; recreate it only if every consumer has handled everything, else say what to do."""
    assert config.name is not None
    info = await js.stream_info(config.name)
    if info.config.retention == config.retention:
        raise refused
    consumers = await js.consumers_info(config.name)
    drained = info.state.messages == 0 or (consumers and all(
        c.num_pending == 0 and c.num_ack_pending == 0 for c in consumers))
    if not drained:
        raise GreenticError(
            f"stream {config.name} must change retention to {config.retention} but still holds "
            "unhandled messages; let the old executors finish (or `nats stream rm "
            f"{config.name}` to drop them), then start again")
    log.warning("recreating stream with its new retention", stream=config.name,
                retention=str(config.retention))
    await js.delete_stream(config.name)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)  # another service recreated it first


async def ensure_consumer(js: JetStreamContext, hop: Hop, *, ack_wait_s: float,
                          max_deliver: int) -> None:
    """Create or update the durable consumer of `hop` (settings may have changed)."""
    await js.add_consumer(hop.stream, consumer_config(hop, ack_wait_s=ack_wait_s,
                                                      max_deliver=max_deliver))


async def ensure_bucket(js: JetStreamContext, bucket: str, ttl_s: float | None,
                        history: int = 1, replicas: int = 1) -> KeyValue:
    """Create a KV bucket, or bring an existing one's TTL (max_age) up to date; idempotent.

    Called by the services that own the TTL setting (executors, `greentic session`), not by
    every service: a service without the setting would otherwise reset it at each start.
    """
    config = KeyValueConfig(bucket=bucket, history=history, storage=StorageType.FILE,
                            ttl=ttl_s or None, replicas=replicas)
    try:
        return await js.create_key_value(config)
    except BadRequestError:  # exists with another TTL: change only that
        info = await js.stream_info(f"KV_{bucket}")
        info.config.max_age = ttl_s or 0
        info.config.duplicate_window = min(DUPLICATE_WINDOW_S, ttl_s or DUPLICATE_WINDOW_S)
        await js.update_stream(info.config)
        log.info("bucket updated", bucket=bucket, ttl_s=ttl_s)
        return await js.key_value(bucket)

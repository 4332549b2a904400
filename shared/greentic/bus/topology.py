"""JetStream streams, consumers and buckets, created idempotently by whichever service starts."""

import contextlib
from typing import NamedTuple

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from greentic.bus.subjects import (
    DEADLETTER_PREFIX,
    WEBCHAT_PREFIX,
    Stage,
    partition_filter,
    stage_filter,
)
from greentic.errors import ConfigError, GreenticError

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
EXECUTOR_LEASES_BUCKET = "greentic-executor-leases"
"""KV (max_age = the partition lease): `member.{id}` → a live executor replica,
`partition.{n}` → the replica owning routed partition n (runner/partitions.py)."""
DEFAULT_PARTITIONS = 16
PARTITIONS_METADATA = "greentic.partitions"
"""GREENTIC_ROUTED's metadata: the partition count it was created with (fixed)."""
PACK_DEPLOYMENTS_BUCKET = "greentic-pack-deployments"
"""KV: `{env}.{pack}` → the locator (and digest pin) `greentic pack deploy` put in place of
the bundle's path; pack-loader reads it at start."""


class Hop(NamedTuple):
    """A stream one service reads from, and the durable consumer its replicas share."""

    stage: Stage
    stream: str
    consumer: str


def partition_consumer(partition: int) -> str:
    """The durable consumer of one routed partition (read by the replica owning it)."""
    return f"executor-{partition}"


HOPS: dict[Stage, Hop] = {
    "ingress": Hop("ingress", "GREENTIC_INGRESS", "router"),
    "routed": Hop("routed", "GREENTIC_ROUTED", "executor"),
    "egress": Hop("egress", "GREENTIC_EGRESS", "egress"),
}
DEADLETTER_STREAM = "GREENTIC_DEADLETTER"
WEBCHAT_STREAM = "GREENTIC_WEBCHAT"


def stream_configs(replicas: int = 1, partitions: int = DEFAULT_PARTITIONS
                   ) -> list[StreamConfig]:
    """Every stream of the platform (the README's subject table lists the same).

    GREENTIC_ROUTED is a work queue read by one consumer per partition: an acked message
    leaves the stream, so a partition's consumer, made afresh when another replica takes the
    partition over, delivers exactly what is not done yet, in order (runner/partitions.py).
    """
    common = dict(storage=StorageType.FILE, discard=DiscardPolicy.OLD,
                  duplicate_window=DUPLICATE_WINDOW_S, num_replicas=replicas)
    streams = [StreamConfig(name=hop.stream, subjects=[stage_filter(hop.stage)], max_age=DAY,
                            retention=RetentionPolicy.LIMITS, **common)
               for hop in HOPS.values() if hop.stage != "routed"]
    routed = HOPS["routed"]
    streams.insert(1, StreamConfig(name=routed.stream, subjects=[stage_filter(routed.stage)],
                                   max_age=DAY, retention=RetentionPolicy.WORK_QUEUE,
                                   metadata={PARTITIONS_METADATA: str(partitions)}, **common))
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


async def ensure_streams(js: JetStreamContext, replicas: int = 1,
                         partitions: int = DEFAULT_PARTITIONS) -> None:
    """Create or update every stream and bucket with `replicas` copies (GREENTIC_NATS_REPLICAS);
    safe to run from every service at once. A routed stream made with another partition count
    stops the service (GREENTIC_PARTITIONS is fixed per deployment)."""
    for config in stream_configs(replicas, partitions):
        try:
            await js.add_stream(config)
        except BadRequestError:
            if config.name == HOPS["routed"].stream:
                await _check_partitions(js, partitions)
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


async def _check_partitions(js: JetStreamContext, partitions: int) -> None:
    info = await js.stream_info(HOPS["routed"].stream)
    created = (info.config.metadata or {}).get(PARTITIONS_METADATA)
    if created is not None and created != str(partitions):
        raise ConfigError(f"GREENTIC_PARTITIONS={partitions}, but {HOPS['routed'].stream} was "
                          f"created with {created} partitions; the count is fixed per "
                          "deployment: set the same value on every service")


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


async def renew_partition_consumer(js: JetStreamContext, partition: int, *, ack_wait_s: float,
                                   max_deliver: int) -> ConsumerInfo:
    """Make the consumer of a partition afresh, for its new owner: on the work queue it
    delivers at once, oldest first, every message not acked yet — also those a dead owner
    held, which the old consumer would have handed on only after ack_wait."""
    stream, name = HOPS["routed"].stream, partition_consumer(partition)
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(stream, name)
    return await js.add_consumer(stream, ConsumerConfig(
        durable_name=name, filter_subject=partition_filter(partition),
        ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=ack_wait_s,
        max_deliver=max_deliver, max_ack_pending=1024))


async def drop_shared_executor_consumer(js: JetStreamContext) -> None:
    """Before partitions, every executor read GREENTIC_ROUTED through one consumer covering all
    of it, which a work queue does not let overlap with a partition's: remove it once drained
    (an executor calls this at start, and refuses to start while it still holds messages)."""
    stream, name = HOPS["routed"].stream, HOPS["routed"].consumer
    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        return
    if info.num_ack_pending:
        raise GreenticError(f"consumer {name} of {stream} (executors before partitions) still "
                            "holds unacked messages; let the old executors finish first")
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(stream, name)
    log.warning("removed the shared executor consumer of the unpartitioned routed hop")


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

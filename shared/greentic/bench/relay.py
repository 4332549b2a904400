"""A do-nothing hop for the baseline: pull a batch, publish each message to the next stream,
ack after the next publish is acknowledged — the same delivery contract as a platform hop."""

import asyncio
import sys

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from greentic.bus.fetch import BatchFetcher


async def relay(url: str, stream: str, subject: str, next_subject: str) -> None:
    nc = await nats.connect(url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    sub = await js.pull_subscribe(subject, durable="relay", stream=stream,
                                  config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                        max_ack_pending=4096))
    fetcher = BatchFetcher(sub, 256)
    while True:
        msgs = await fetcher.next_batch()
        for msg in msgs:
            await js.publish_async(next_subject, msg.data, headers=msg.headers)
        await js.publish_async_completed()
        for msg in msgs:
            await msg.ack()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(relay(*sys.argv[1:5]))

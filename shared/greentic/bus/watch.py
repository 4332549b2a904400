"""Following a KV bucket: its current content, then every change."""

import asyncio
from collections.abc import AsyncIterator

from nats.js.kv import KeyValue


async def watch_bucket(kv: KeyValue, loaded: asyncio.Event) -> AsyncIterator[KeyValue.Entry]:
    """Every entry of `kv` and then every update, until cancelled; `loaded` is set once the
    bucket's current content has been yielded."""
    watcher = await kv.watchall()
    try:
        async for entry in watcher:
            if entry is None:
                loaded.set()
                continue
            yield entry
    finally:
        await watcher.stop()

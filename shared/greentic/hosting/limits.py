"""Limits every HTTP server of the platform runs under (public ingress, admin, health).

- body size: `client_max_size` → 413 (aiohttp refuses as soon as the body grows past it);
- header size: aiohttp's parser limits, set explicitly here (a longer line or field → 400);
- time: the whole body must arrive within `body_timeout_s`, else 408 and the connection is
  closed, so a client that trickles its body never holds a handler;
- idle keep-alive connections are closed after `KEEPALIVE_TIMEOUT_S`.
"""

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from greentic.hosting.web import json_error

MAX_LINE_BYTES = 8190
"""Longest request line or header line."""
MAX_FIELD_BYTES = 8190
"""Longest single header value."""
MAX_HEADERS = 100
"""Most header fields in one request."""
KEEPALIVE_TIMEOUT_S = 75.0
"""An idle keep-alive connection is closed after this long (aiohttp's default is an hour)."""


def body_deadline(body_timeout_s: float) -> Any:
    """Middleware: read the whole body within `body_timeout_s` before the handler runs
    (handlers then get it from aiohttp's cache); a slow body gets 408 and a closed connection."""

    @web.middleware
    async def deadline(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(body_timeout_s):
                    await request.read()
            except TimeoutError:
                response = json_error(408, "RequestTimeout",
                                      f"the request body did not arrive within "
                                      f"{body_timeout_s:g} s")
                # answer and hang up at once, instead of lingering to drain the rest
                response.force_close()
                await response.prepare(request)
                await response.write_eof()
                if request.transport is not None:
                    request.transport.close()
                return response
        return await handler(request)

    return deadline


def limited_app(*, max_body_bytes: int, body_timeout_s: float,
                middlewares: Sequence[Any] = ()) -> web.Application:
    """An aiohttp application with the body size and time limits; `middlewares` run inside
    the deadline (they see a body that already arrived)."""
    return web.Application(client_max_size=max_body_bytes,
                           middlewares=[*middlewares, body_deadline(body_timeout_s)])


def limited_runner(app: web.Application) -> web.AppRunner:
    """An AppRunner with the header limits and keep-alive timeout above."""
    return web.AppRunner(app, access_log=None, max_line_size=MAX_LINE_BYTES,
                         max_field_size=MAX_FIELD_BYTES, max_headers=MAX_HEADERS,
                         keepalive_timeout=KEEPALIVE_TIMEOUT_S)

"""What every HTTP server of the platform answers on failure: a JSON error, never a crash."""

from typing import Any

import msgspec
import nats.errors
import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

_BODY_HEADERS = {"Content-Type", "Content-Length"}

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects accepted in a request body: whatever ingress accepts must
still decode at every later hop, wrapped inside an envelope (msgspec gives up near 1000)."""


def json_depth(value: Any) -> int:
    """How deeply arrays/objects nest in a decoded JSON value (iteratively: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def decode_json(body: bytes | str, type: Any = Any) -> Any:
    """A request body as JSON (as `type`); msgspec.DecodeError for anything that is not JSON,
    not of `type`, or nested deeper than MAX_JSON_DEPTH."""
    try:
        value = msgspec.json.decode(body)
    except UnicodeDecodeError as exc:  # msgspec's own error for bad UTF-8 inside a string
        raise msgspec.DecodeError(f"invalid UTF-8: {exc.reason}") from None
    except RecursionError:
        value = None
        depth = MAX_JSON_DEPTH + 1
    else:
        depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise msgspec.DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value if type is Any else msgspec.convert(value, type)


def json_error(status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> web.Response:
    """The platform's error body (Direct Line's shape): {"error": {"code", "message"}}."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """HTTP errors as JSON (their headers kept: WWW-Authenticate, Allow…); NATS failures as
    503 with Retry-After."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            headers = {k: v for k, v in exc.headers.items() if k not in _BODY_HEADERS}
            return json_error(exc.status, exc.reason, exc.text or exc.reason, headers)
        raise
    except (nats.errors.Error, TimeoutError) as exc:
        log.warning("message bus call failed", path=request.path, error=repr(exc))
        return json_error(503, "ServiceUnavailable", "message bus unavailable; retry",
                          {"Retry-After": "1"})

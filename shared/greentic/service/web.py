"""What every HTTP server of the platform answers on failure: a JSON error, never a crash."""

from typing import Any

import nats.errors
import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

_BODY_HEADERS = {"Content-Type", "Content-Length"}


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

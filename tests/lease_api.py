"""A stand-in for the Kubernetes API server's Lease endpoints, as far as leader election uses them.

It keeps what makes election safe on the real server: `create` refuses an existing name (409
AlreadyExists), every write bumps `metadata.resourceVersion`, and a replace carrying a stale
resourceVersion is refused (409 Conflict). It does not do authentication, RBAC, admission,
field validation, watches, patches or server-side defaults. (kmock 0.8's emulator was tried
first: it answers GET/POST but has no PUT/replace and no resourceVersion, so it cannot show
the compare-and-swap that keeps two leaders apart.)
"""

import asyncio
import itertools
import uuid
from typing import Any

from aiohttp import web

PREFIX = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "reason": reason, "message": message,
                              "code": code}, status=code)


class LeaseApi:
    """`async with LeaseApi() as api:` serves on `api.url`; `api.down = True` answers 503."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []  # (verb, holderIdentity)
        self.conflicts = 0  # writes refused with 409
        self.down = False
        self.read_barrier: asyncio.Barrier | None = None
        """When set, reads wait until this many are in: a race the test decides, not timing."""
        self._versions = itertools.count(1)
        app = web.Application(middlewares=[self._outage])
        app.router.add_get(PREFIX + "/{name}", self._get)
        app.router.add_post(PREFIX, self._create)
        app.router.add_put(PREFIX + "/{name}", self._replace)
        self._runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def __aenter__(self) -> "LeaseApi":
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    @web.middleware
    async def _outage(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.down:
            return _status(503, "ServiceUnavailable", "the test took the API server down")
        return await handler(request)

    def holder(self, namespace: str, name: str) -> str | None:
        lease = self.leases.get((namespace, name))
        return lease["spec"].get("holderIdentity") if lease else None

    def _stamp(self, body: dict[str, Any], verb: str) -> dict[str, Any]:
        body["metadata"]["resourceVersion"] = str(next(self._versions))
        body.setdefault("kind", "Lease")
        body.setdefault("apiVersion", "coordination.k8s.io/v1")
        body.setdefault("spec", {})
        self.writes.append((verb, body["spec"].get("holderIdentity")))
        return body

    async def _get(self, request: web.Request) -> web.Response:
        if self.read_barrier is not None:
            await self.read_barrier.wait()
        key = (request.match_info["namespace"], request.match_info["name"])
        if key not in self.leases:
            return _status(404, "NotFound", f'leases.coordination.k8s.io "{key[1]}" not found')
        return web.json_response(self.leases[key])

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace = request.match_info["namespace"]
        key = (namespace, body["metadata"]["name"])
        if key in self.leases:
            self.conflicts += 1
            return _status(409, "AlreadyExists",
                           f'leases.coordination.k8s.io "{key[1]}" already exists')
        body["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()))
        self.leases[key] = self._stamp(body, "create")
        return web.json_response(self.leases[key], status=201)

    async def _replace(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = (request.match_info["namespace"], request.match_info["name"])
        current = self.leases.get(key)
        if current is None:
            return _status(404, "NotFound", f'leases.coordination.k8s.io "{key[1]}" not found')
        version = body.get("metadata", {}).get("resourceVersion")
        if version and version != current["metadata"]["resourceVersion"]:
            self.conflicts += 1
            return _status(409, "Conflict", "Operation cannot be fulfilled on leases."
                           f'coordination.k8s.io "{key[1]}": the object has been modified; '
                           "please apply your changes to the latest version and try again")
        body["metadata"].update(namespace=key[0], uid=current["metadata"]["uid"])
        self.leases[key] = self._stamp(body, "replace")
        return web.json_response(self.leases[key])

"""Runs one service: connect to NATS, ensure the topology, serve health, drain on SIGTERM."""

import asyncio
import contextlib
import signal
from typing import Any, Protocol

import structlog
from aiohttp import web
from nats.aio.client import Client
from nats.js import JetStreamContext

from greentic.bus.connection import connect
from greentic.bus.topology import ensure_streams
from greentic.config.settings import Settings
from greentic.hosting.limits import limited_app, limited_runner
from greentic.hosting.web import json_errors
from greentic.telemetry.logging import configure_logging
from greentic.telemetry.metrics import configure_metrics, prometheus_text
from greentic.telemetry.tracing import configure_tracing

log = structlog.get_logger(__name__)


class Service(Protocol):
    """A service's own logic; the host owns the process around it."""

    name: str

    async def start(self, nc: Client, js: JetStreamContext) -> None:
        """Set up subscriptions/servers; return when ready to work."""

    async def run(self) -> None:
        """Work until `stop()` is called."""

    async def stop(self) -> None:
        """Stop taking work, finish what is in flight."""

    def stats(self) -> dict[str, Any]:
        """Counters shown on /healthz."""


HEALTH_MAX_BODY_BYTES = 1024
"""The health server takes no bodies; anything bigger is refused with 413."""


def health_app(service: Service, nc: Client, ready: asyncio.Event,
               body_timeout_s: float) -> web.Application:
    """/healthz, /readyz and /metrics, under the platform's HTTP limits."""
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": service.name, **service.stats()})

    async def readyz(_request: web.Request) -> web.Response:
        ok = ready.is_set() and nc.is_connected
        return web.json_response({"ready": ok, "nats": nc.is_connected},
                                 status=200 if ok else 503)

    async def prometheus(_request: web.Request) -> web.Response:
        return web.Response(body=prometheus_text(),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    app = limited_app(max_body_bytes=HEALTH_MAX_BODY_BYTES, body_timeout_s=body_timeout_s,
                      middlewares=[json_errors])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    return app


async def run_service(service: Service, settings: Settings) -> None:
    """The whole life of a service process."""
    configure_logging(service.name, settings.log_level, settings.log_format)
    tracing = configure_tracing(service.name)
    meters = configure_metrics(service.name)
    nc = await connect(settings.nats_url, service.name, creds=settings.nats_creds)
    js = nc.jetstream()
    ready = asyncio.Event()
    runner = limited_runner(health_app(service, nc, ready, settings.http_body_timeout_s))
    await runner.setup()
    site = web.TCPSite(runner, settings.health_host, settings.health_port)
    await site.start()
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        await ensure_streams(js, settings.nats_replicas, settings.partitions)
        await service.start(nc, js)
        ready.set()
        log.info("ready", nats=settings.nats_url, health_port=settings.health_port)
        work = asyncio.create_task(service.run())
        waiter = asyncio.create_task(stop_requested.wait())
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            work.result()  # a crash of the work loop ends the process with its error
        log.info("draining", timeout_s=settings.drain_timeout_s)
        ready.clear()
        try:
            await asyncio.wait_for(service.stop(), settings.drain_timeout_s)
        except TimeoutError:
            log.warning("drain timed out; in-flight messages will be redelivered")
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
    finally:
        await runner.cleanup()
        try:
            await asyncio.wait_for(nc.drain(), 5)
        except Exception:  # no server to drain to: just close
            await nc.close()
        tracing.shutdown()  # flushes spans still batched
        meters.shutdown()
        log.info("stopped")

"""A real ingress (public + admin API) served from a background thread of the test process,
on loopback ports, against a real nats-server: fast enough to throw thousands of requests at."""

import asyncio
import json
import subprocess
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
from aiohttp import web
from nats.aio.client import Client

from greentic.bus.topology import ensure_streams
from greentic.config.bundle import load_bundle
from greentic.config.settings import Settings, load_settings
from greentic.hosting.launcher import free_port, start_nats, stop_processes
from greentic.hosting.lifecycle import health_app
from greentic.hosting.limits import limited_runner
from greentic.services.ingress import IngressService

T = TypeVar("T")


@dataclass
class InProcessIngress:
    """`IngressService` exactly as the ingress process runs it, minus the process."""

    root: Path
    bundle: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    nats_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    service: IngressService | None = None
    settings: Settings | None = None
    _health: web.AppRunner | None = None
    nc: Client | None = None
    _nats: subprocess.Popen | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def start(self) -> "InProcessIngress":
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self._nats = start_nats(self.root / "nats", self.nats_port,
                                self.root / "logs" / "nats-server.log")
        (self.root / "bundle.yaml").write_text(json.dumps(self.bundle))
        settings = load_settings({
            "GREENTIC_NATS_URL": self.nats_url, "GREENTIC_BUNDLE": str(self.root / "bundle.yaml"),
            "GREENTIC_HTTP_HOST": "127.0.0.1", "GREENTIC_HTTP_PORT": str(self.http_port),
            "GREENTIC_ADMIN_PORT": str(self.admin_port),
            "GREENTIC_WEBCHAT_TOKEN_KEY": "test-token-key", **self.env})
        self.settings = settings
        self.service = IngressService(settings, load_bundle(settings.bundle))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self._start_service)
        return self

    async def _start_service(self) -> None:
        assert self.service is not None
        self.nc = await nats.connect(self.nats_url)
        js = self.nc.jetstream()
        await ensure_streams(js)
        await self.service.start(self.nc, js)
        ready = asyncio.Event()
        ready.set()
        self._health = limited_runner(health_app(self.service, self.nc, ready,
                                                 self.settings.http_body_timeout_s))
        await self._health.setup()
        await web.TCPSite(self._health, "127.0.0.1", self.health_port).start()

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None:
            async def shutdown() -> None:
                if self.service is not None:
                    await self._health.cleanup()
                    await self.service.stop()
                if self.nc is not None:
                    await self.nc.close()

            self.call(shutdown)
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(10)
        if self._nats is not None:
            stop_processes([self._nats], timeout=10)

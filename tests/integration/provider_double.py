"""A local stand-in for provider APIs (Slack, Telegram…): records every request exactly as
received and answers from a script, so tests check the bytes we send."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.integration.platform import Platform, make_platform


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: object


@dataclass
class ProviderDouble:
    """`script` is a list of (status, headers, json body) answers, used in order; when it runs
    out every request gets 200 `default_body`."""

    default_body: dict = field(default_factory=lambda: {"ok": True})
    bodies_by_path: dict[str, dict] = field(default_factory=dict)
    """Default answers for particular paths (e.g. an OAuth token endpoint)."""
    script: list[tuple[int, dict[str, str], dict]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/x-www-form-urlencoded":
            body: object = dict(await request.post())
        else:
            body = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        self.arrived.set()
        if request.path in self.bodies_by_path:
            return web.json_response(self.bodies_by_path[request.path])
        status, headers, answer = self.script.pop(0) if self.script else \
            (200, {}, self.default_body)
        return web.json_response(answer, status=status, headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def wait_for(self, count: int, within_s: float = 20) -> list[Recorded]:
        async with asyncio.timeout(within_s):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests


def channel_platform(name: str, channels: dict, packs: dict[str, str] | None = None,
                     **env: str) -> Any:
    """A module-scoped `platform` fixture: the test bundle plus `channels` for acme/support."""

    @pytest.fixture(scope="module")
    def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
        running = make_platform(Path(tmp_path_factory.mktemp(name)), channels, packs, **env)
        yield running
        running.stop()

    return platform


def provider_double(port: int, **options: Any) -> Any:
    """A `double` fixture: a ProviderDouble on `port`, fresh for every test."""

    @pytest.fixture
    async def double() -> AsyncIterator[ProviderDouble]:
        provider = ProviderDouble(port=port, **options)
        await provider.start()
        yield provider
        await provider.stop()

    return double

"""Fixtures that start real processes; every test talks to them over loopback."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import nats
import pytest

from tests.integration.platform import Platform, make_platform
from tests.integration.registry import registry  # noqa: F401  (a real OCI registry)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = make_platform(Path(tmp_path_factory.mktemp("platform")))
    yield running
    running.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def js(platform: Platform) -> AsyncIterator[nats.js.JetStreamContext]:
    nc = await nats.connect(platform.nats_url)
    yield nc.jetstream()
    await nc.close()

"""Real servers and built guests shared by a whole test run (made once)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import NatsServer, RedisServer
from tests.guests import GUESTS, build_guest


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(os.environ.get("GREENTIC_TEST_REDIS_URL"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def guests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every example guest built from source (cached by source hash across runs)."""
    out = tmp_path_factory.mktemp("guests")
    return {name: build_guest(name, out) for name in GUESTS}

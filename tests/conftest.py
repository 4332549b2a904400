"""Real servers shared by a whole test run (started once, stopped at the end)."""

import os
from collections.abc import Iterator

import pytest

from tests.backends import NatsServer, RedisServer


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

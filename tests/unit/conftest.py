"""Fixtures of the unit tests that run guests in-process."""

from collections.abc import Iterator

import pytest

from greentic.component import ComponentEngine
from tests.guests import COMPILE_CACHE


@pytest.fixture(scope="module")
def engine() -> Iterator[ComponentEngine]:
    """A wasmtime engine (fuel, epoch deadline) on the test run's compile cache."""
    running = ComponentEngine(COMPILE_CACHE)
    yield running
    running.close()

"""Fixtures shared by unit and integration tests."""

from pathlib import Path

import pytest

from tests.guests import GUESTS, build_guest


@pytest.fixture(scope="session")
def guests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every example guest built from source (cached by source hash across runs)."""
    out = tmp_path_factory.mktemp("guests")
    return {name: build_guest(name, out) for name in GUESTS}

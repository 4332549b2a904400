"""A signed `.gtpack` in the bundle: verified by pack-loader, served over WebChat, replaced by a
newer signed version without a restart, and a tampered or untrusted replacement refused while
the last good version keeps answering."""

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from nacl.signing import SigningKey

from greentic.pack.archive import build_pack, sign_pack
from greentic.pack.keys import format_public_key
from tests.integration.platform import ECHO_FLOW, Platform, make_platform
from tests.integration.test_message_path import (
    answer_once_it_starts_with,
    collect_replies,
    open_client,
)
from tests.unit.pack_fixtures import rezip

KEY = SigningKey.generate()
STRANGER = SigningKey.generate()


def signed_pack(root: Path, word: str, key: SigningKey = KEY) -> bytes:
    """Build `shop` whose echo flow answers '<word> heard: …', signed by `key`."""
    source = root / "source" / word
    (source / "flows").mkdir(parents=True)
    (source / "pack.yaml").write_text(
        f"pack_id: shop\nversion: 1.0.{len(list((root / 'source').iterdir()))}\n"
        "publisher: tests\nflows: [{id: echo, file: flows/echo.ygtc}]\n")
    (source / "flows" / "echo.ygtc").write_text(ECHO_FLOW.replace("{{tenant}}", word))
    return sign_pack(build_pack(source), key)


def install(path: Path, data: bytes) -> None:
    """Replace the pack the way `greentic pack build/sign` does: one rename."""
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = Path(tmp_path_factory.mktemp("signed"))
    (root / "packs").mkdir()
    install(root / "packs" / "shop.gtpack", signed_pack(root, "signed-v1"))
    running = make_platform(
        root, {"shop": {"provider": "webchat", "flow": "shop/echo",
                        "config": {"anonymous": True}}},
        {"shop": "packs/shop.gtpack"},
        GREENTIC_TRUSTED_KEYS=format_public_key(KEY.verify_key))
    yield running
    running.stop()


async def refused(platform: Platform, since: int, reason: str) -> None:
    deadline = time.monotonic() + 10
    while not any(reason in line for line in platform.log("pack-loader")[since:].splitlines()
                  if "pack refused" in line):
        assert time.monotonic() < deadline, platform.log("pack-loader")[since:][-3000:]
        await asyncio.sleep(0.1)


async def test_a_signed_pack_is_served_upgraded_and_a_bad_one_refused(
        platform: Platform) -> None:
    path = platform.root / "packs" / "shop.gtpack"
    executor_pid = platform.services["executor"].pid
    async with aiohttp.ClientSession() as http:
        client = await open_client(platform, http, "acme", "support", "shop")
        await client.post("hello")
        assert [r.text for r in await collect_replies(client, 1)] == ["signed-v1 heard: hello"]
        assert "pack verified" in platform.log("pack-loader")

        install(path, signed_pack(platform.root, "signed-v2"))
        assert await answer_once_it_starts_with(client, "signed-v2 heard:")
        assert platform.services["executor"].pid == executor_pid

        def flip(entries: dict[str, bytes]) -> None:
            entries["flows/echo/flow.ygtc"] = entries["flows/echo/flow.ygtc"].replace(b"v3", b"v6")

        since = len(platform.log("pack-loader"))
        install(path, rezip(signed_pack(platform.root, "signed-v3"), flip))
        await refused(platform, since, "flows/echo/flow.ygtc: content does not match its SBOM")
        await client.post("still v2?")
        assert [r.text for r in await collect_replies(client, 1)] == \
            ["signed-v2 heard: still v2?"]

        since = len(platform.log("pack-loader"))
        install(path, signed_pack(platform.root, "signed-v4", STRANGER))
        await refused(platform, since, "which is not a trusted key")
        await client.post("and now?")
        assert [r.text for r in await collect_replies(client, 1)] == ["signed-v2 heard: and now?"]

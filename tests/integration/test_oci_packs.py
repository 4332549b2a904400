"""A signed pack served from an OCI registry: the bundle names `oci://127.0.0.1:<port>/…:1.0.0`,
pack-loader pulls and verifies it and WebChat runs its flow; when the tag moves the new version
is served, and a tag moved to something that fails to pull or verify keeps the last good one."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from greentic.pack.keys import format_public_key
from greentic.pack.oci import EMPTY_BLOB, RegistryClient, pack_manifest
from greentic.types.oci import parse_reference
from tests.integration.platform import Platform, make_platform
from tests.integration.registry import Registry
from tests.integration.test_message_path import (
    answer_once_it_starts_with,
    collect_replies,
    open_client,
)
from tests.integration.test_signed_packs import KEY, STRANGER, refused, signed_pack


async def push(locator: str, data: bytes) -> None:
    async with RegistryClient() as client:
        await client.push(parse_reference(locator), data)


async def push_not_a_pack(locator: str, data: bytes) -> None:
    """An artifact whose one layer is the pack's bytes under another media type."""
    ref = parse_reference(locator)
    manifest = msgspec.json.decode(pack_manifest(data, title="x")[0])
    manifest["layers"][0]["mediaType"] = "application/octet-stream"
    async with RegistryClient() as client:
        await client.push_blob(ref, EMPTY_BLOB)
        await client.push_blob(ref, data)
        await client.put_manifest(ref, msgspec.json.encode(manifest))


async def pull_failed(platform: Platform, since: int, reason: str) -> None:
    deadline = time.monotonic() + 10
    while not any(reason in line for line in platform.log("pack-loader")[since:].splitlines()
                  if "pack pull failed" in line):
        assert time.monotonic() < deadline, platform.log("pack-loader")[since:][-3000:]
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def oci_platform(tmp_path_factory: pytest.TempPathFactory,
                 registry: Registry) -> Iterator[tuple[Platform, str]]:
    root = Path(tmp_path_factory.mktemp("oci"))
    locator = registry.locator("platform/shop", "1.0.0")
    asyncio.run(push(locator, signed_pack(root, "oci-v1")))
    running = make_platform(
        root, {"shop": {"provider": "webchat", "flow": "shop/echo",
                        "config": {"anonymous": True}}},
        {"shop": {"oci": locator}},
        GREENTIC_TRUSTED_KEYS=format_public_key(KEY.verify_key),
        GREENTIC_PACK_CACHE_DIR=str(root / "cache"), GREENTIC_PACK_REFRESH_S="0.3")
    yield running, locator
    running.stop()


async def test_a_pack_from_a_registry_is_served_and_follows_its_tag(
        oci_platform: tuple[Platform, str]) -> None:
    platform, locator = oci_platform
    async with aiohttp.ClientSession() as http:
        client = await open_client(platform, http, "acme", "support", "shop")
        await client.post("hello")
        assert [r.text for r in await collect_replies(client, 1)] == ["oci-v1 heard: hello"]
        log = platform.log("pack-loader")
        assert "pack pulled" in log and "pack verified" in log and '"percent": 100' in log

        await push(locator, signed_pack(platform.root, "oci-v2"))
        assert await answer_once_it_starts_with(client, "oci-v2 heard:")

        since = len(platform.log("pack-loader"))
        refusals = platform.health("pack-loader")["refusals"]
        await push_not_a_pack(locator, signed_pack(platform.root, "oci-v3"))
        await pull_failed(platform, since, "(not a greentic pack)")
        assert platform.health("pack-loader")["refusals"] > refusals
        await client.post("still v2?")
        assert [r.text for r in await collect_replies(client, 1)] == \
            ["oci-v2 heard: still v2?"]

        since = len(platform.log("pack-loader"))
        await push(locator, signed_pack(platform.root, "oci-v4", STRANGER))
        await refused(platform, since, "which is not a trusted key")
        await client.post("and now?")
        assert [r.text for r in await collect_replies(client, 1)] == ["oci-v2 heard: and now?"]

"""`.gtpack`s through a real OCI registry (Debian's docker-registry on loopback): pushed, pulled
byte-identical through the cache, and refused when a digest, a media type or a tag is wrong."""

import hashlib
import itertools
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from greentic.cli.main import cli
from greentic.config.bundle import Bundle, PackSource, Tenant
from greentic.config.settings import load_settings
from greentic.errors import PackError
from greentic.hosting.launcher import free_port
from greentic.pack.archive import PackLimits, build_pack, sign_pack
from greentic.pack.keys import format_public_key
from greentic.pack.oci import (
    EMPTY_BLOB,
    RegistryClient,
    cached_pack,
    pack_manifest,
)
from greentic.pack.resolve import resolve_pack
from greentic.services.pack_loader import PackLoaderService
from greentic.types.oci import Reference, parse_reference
from tests.integration.registry import Registry
from tests.unit.pack_fixtures import KEY, write_source

NAMES = itertools.count()


def new_pack(tmp_path: Path, *, version: str = "1.2.3") -> bytes:
    """A signed `shop` pack unlike any other pushed in this session (blobs are shared by
    digest across repositories)."""
    source = write_source(tmp_path / f"src-{next(NAMES)}")
    (source / "assets" / "readme.txt").write_text(f"made for {tmp_path.name} {version}\n")
    (source / "pack.yaml").write_text((source / "pack.yaml").read_text().replace(
        "version: 1.2.3", f"version: {version}"))
    return sign_pack(build_pack(source), KEY)


def locator(registry: Registry, tmp_path: Path, tag: str = "1.2.3") -> Reference:
    return parse_reference(registry.locator(f"test/{tmp_path.name.lower()[:40]}", tag))


async def push(ref: Reference, data: bytes) -> str:
    async with RegistryClient() as client:
        return (await client.push(ref, data)).layer_digest


async def test_push_then_pull_gives_the_same_bytes_and_a_second_pull_uses_the_cache(
        registry: Registry, tmp_path: Path) -> None:
    data = new_pack(tmp_path)
    ref = locator(registry, tmp_path)
    async with RegistryClient() as client:
        pushed = await client.push(ref, data)
        assert (await client.push(ref, data)) == pushed  # deterministic; blobs skipped by HEAD
        assert pushed.layer_digest == "sha256:" + hashlib.sha256(data).hexdigest()
        progress: list[tuple[int, int]] = []
        first = await client.pull(ref, cache_dir=tmp_path / "cache", progress=lambda *p:
                                  progress.append(p))
        assert first.downloaded and first.path.read_bytes() == data
        assert first.manifest_digest == pushed.manifest_digest
        assert progress[-1] == (len(data), len(data))

        # without its blob the registry could not serve a download: the cache must
        registry.blob_file(pushed.layer_digest).rename(tmp_path / "moved-blob")
        try:
            again = await client.pull(ref, cache_dir=tmp_path / "cache")
            by_digest = await client.pull(ref.pinned(pushed.manifest_digest),
                                          cache_dir=tmp_path / "cache")
        finally:
            (tmp_path / "moved-blob").rename(registry.blob_file(pushed.layer_digest))
    assert not again.downloaded and again.path == first.path
    assert not by_digest.downloaded and by_digest.manifest_digest == pushed.manifest_digest


async def test_a_digest_pin_must_match(registry: Registry, tmp_path: Path) -> None:
    ref = locator(registry, tmp_path)
    layer_digest = await push(ref, new_pack(tmp_path))
    other = "sha256:" + "0" * 64
    with pytest.raises(PackError) as caught:
        await resolve_pack(str(ref), base_dir=tmp_path, cache_dir=tmp_path / "cache",
                           digest=other)
    assert str(caught.value) == (f"{ref}: pinned digest {other} but the registry serves "
                                 f"{layer_digest} (the tag moved, or the pin is wrong)")
    assert not (tmp_path / "cache").exists()
    path = await resolve_pack(str(ref), base_dir=tmp_path, cache_dir=tmp_path / "cache",
                              digest=layer_digest)
    assert path == cached_pack(tmp_path / "cache", layer_digest)
    # a cached pin is served without asking the registry (here: no registry at all)
    offline = f"oci://127.0.0.1:{free_port()}/{ref.repository}:1.2.3"
    assert await resolve_pack(offline, base_dir=tmp_path, cache_dir=tmp_path / "cache",
                              digest=layer_digest) == path
    with pytest.raises(PackError, match=r"cannot reach registry 127\.0\.0\.1:"):
        await resolve_pack(offline, base_dir=tmp_path, cache_dir=tmp_path / "cache2")


async def test_a_blob_tampered_on_the_registry_is_refused(registry: Registry,
                                                          tmp_path: Path) -> None:
    ref = locator(registry, tmp_path)
    layer_digest = await push(ref, new_pack(tmp_path))
    blob = registry.blob_file(layer_digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    async with RegistryClient() as client:
        with pytest.raises(PackError) as caught:
            await client.pull(ref, cache_dir=tmp_path / "cache")
    assert str(caught.value).startswith(f"{ref}: blob {layer_digest} does not match its digest")
    assert "tampered or corrupt" in str(caught.value)
    assert list((tmp_path / "cache" / "sha256").iterdir()) == []


async def test_an_artifact_that_is_not_a_pack_is_refused(registry: Registry,
                                                         tmp_path: Path) -> None:
    ref = locator(registry, tmp_path)
    data = new_pack(tmp_path)
    manifest = msgspec.json.decode(pack_manifest(data, title="x")[0])
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
    async with RegistryClient() as client:
        await client.push_blob(ref, EMPTY_BLOB)
        await client.push_blob(ref, data)
        await client.put_manifest(ref, msgspec.json.encode(manifest))
        with pytest.raises(PackError) as caught:
            await client.pull(ref, cache_dir=tmp_path / "cache")
    assert str(caught.value) == (
        f"{ref}: layer media type 'application/vnd.oci.image.layer.v1.tar' is not "
        "application/vnd.greentic.gtpack.v1+zip (not a greentic pack)")


async def test_an_unknown_tag_and_an_oversized_pack_are_refused_before_downloading(
        registry: Registry, tmp_path: Path) -> None:
    ref = locator(registry, tmp_path)
    data = new_pack(tmp_path)
    await push(ref, data)
    missing = locator(registry, tmp_path, "9.9.9")
    async with RegistryClient() as client:
        with pytest.raises(PackError) as caught:
            await client.pull(missing, cache_dir=tmp_path / "cache")
        assert str(caught.value).startswith(f"{missing}: get manifest 9.9.9: HTTP 404: "
                                            "manifest unknown (MANIFEST_UNKNOWN")
        assert "no such repository, tag or digest" in str(caught.value)
        with pytest.raises(PackError, match=f"pack is {len(data)} bytes, over the limit of 100"):
            await client.pull(ref, cache_dir=tmp_path / "cache",
                              limits=PackLimits(max_archive_bytes=100))
    assert not (tmp_path / "cache").exists()


async def test_pack_loader_asks_for_a_tag_again_only_after_the_refresh_interval(
        registry: Registry, tmp_path: Path) -> None:
    ref = locator(registry, tmp_path, "stable")
    first = await push(ref, new_pack(tmp_path, version="1.0.0"))
    bundle = Bundle(packs={"shop": PackSource(oci=str(ref))},
                    tenants={"acme": Tenant(packs=["shop"])}, base_dir=str(tmp_path))

    def service(refresh: str) -> PackLoaderService:
        return PackLoaderService(load_settings({
            "GREENTIC_TRUSTED_KEYS": format_public_key(KEY.verify_key),
            "GREENTIC_PACK_CACHE_DIR": str(tmp_path / "cache"),
            "GREENTIC_PACK_REFRESH_S": refresh}), bundle)

    slow, fast = service("3600"), service("0.001")
    assert (await slow._sources.locate_all())["shop"] == cached_pack(tmp_path / "cache", first)
    assert (await fast._sources.locate_all())["shop"] == cached_pack(tmp_path / "cache", first)
    second = await push(ref, new_pack(tmp_path, version="1.0.1"))
    assert (await slow._sources.locate_all())["shop"] == cached_pack(tmp_path / "cache", first)
    assert (await fast._sources.locate_all())["shop"] == cached_pack(tmp_path / "cache", second)
    documents, _, _ = fast._documents(await fast._sources.locate_all())
    assert {d.pack_version for _, d in documents if d} == {"1.0.1"}


def test_the_cli_pushes_and_pulls_verifying_the_signature(
        registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENTIC_PACK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GREENTIC_TRUSTED_KEYS", raising=False)
    (tmp_path / "shop.gtpack").write_bytes(data := new_pack(tmp_path))
    ref = locator(registry, tmp_path)
    runner = CliRunner()
    pushed = runner.invoke(cli, ["pack", "push", "shop.gtpack", str(ref)])
    assert pushed.exit_code == 0, pushed.output
    layer = "sha256:" + hashlib.sha256(data).hexdigest()
    assert f"layer     {layer}" in pushed.output
    assert f'{{oci: "{ref}", digest: "{layer}"}}' in pushed.output
    [pinned] = [line.split()[1] for line in pushed.output.splitlines()
                if line.startswith("pinned")]

    trust = format_public_key(KEY.verify_key)
    pulled = runner.invoke(cli, ["pack", "pull", pinned, "-o", "out.gtpack", "--trust", trust])
    assert pulled.exit_code == 0, pulled.output
    assert "downloaded" in pulled.output and f"signed by {trust}" in pulled.output
    assert (tmp_path / "out.gtpack").read_bytes() == data
    again = runner.invoke(cli, ["pack", "pull", str(ref), "--digest", layer])
    assert again.exit_code == 0, again.output
    assert "from the cache" in again.output and "signature not verified" in again.output
    assert (tmp_path / f"{ref.repository.rsplit('/', 1)[-1]}.gtpack").read_bytes() == data

    stranger = runner.invoke(cli, ["pack", "pull", str(ref), "-o", "no.gtpack", "--trust",
                                   format_public_key(type(KEY)(b"\x07" * 32).verify_key)])
    assert stranger.exit_code == 1 and "not a trusted key" in stranger.output
    assert not (tmp_path / "no.gtpack").exists()
    bad = runner.invoke(cli, ["pack", "pull", "oci://127.0.0.1/Shop:1"])
    assert bad.exit_code == 1 and "repository part 'Shop'" in bad.output

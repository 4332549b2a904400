"""OCI locators in the bundle and on the command line: parsed by the distribution grammar,
refused naming the part (or bundle field) at fault; the artifact manifest a pack pushes as."""

import hashlib
from pathlib import Path

import msgspec
import pytest

from greentic.config.bundle import load_bundle
from greentic.config.settings import load_settings
from greentic.errors import ConfigError, PackError
from greentic.pack.archive import build_pack, sign_pack
from greentic.pack.oci import (
    EMPTY_MEDIA_TYPE,
    GTPACK_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    OciOptions,
    ProgressLog,
    pack_manifest,
)
from greentic.types.oci import Reference, parse_reference
from tests.unit.pack_fixtures import KEY, write_source

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("oci://127.0.0.1:5000/packs/shop:1.0.0",
     Reference(host="127.0.0.1:5000", repository="packs/shop", tag="1.0.0")),
    ("oci://ghcr.io/acme/greentic/shop:v1.2.3-rc.1_x",
     Reference(host="ghcr.io", repository="acme/greentic/shop", tag="v1.2.3-rc.1_x")),
    (f"oci://localhost/shop@{DIGEST}",
     Reference(host="localhost", repository="shop", digest=DIGEST)),
    (f"oci://[::1]:5000/a.b/c__d/e-f:latest@{DIGEST}",
     Reference(host="[::1]:5000", repository="a.b/c__d/e-f", tag="latest", digest=DIGEST)),
])
def test_a_locator_parses_into_host_repository_tag_and_digest(text: str,
                                                               expected: Reference) -> None:
    ref = parse_reference(text)
    assert ref == expected
    assert str(ref) == text
    assert ref.reference == (expected.digest or expected.tag)


@pytest.mark.parametrize(("text", "message"), [
    ("https://ghcr.io/shop:1", "must start with oci://"),
    ("oci://ghcr.io", "no repository after the host"),
    ("oci://ghcr.io/shop", "give a tag (…:1.0.0) or a digest"),
    ("oci://ghcr.io/Shop:1", "repository part 'Shop' must be lower-case"),
    ("oci://ghcr.io/a//b:1", "repository part ''"),
    ("oci://ghcr.io/shop:-bad", "tag '-bad'"),
    ("oci://ghcr.io/shop@sha256:abc", "digest 'sha256:abc' is not"),
    (f"oci://ghcr.io/shop@md5:{'0' * 32}", "is not 'sha256:"),
    ("oci://gh_cr.io/shop:1", "registry host 'gh_cr.io'"),
    ("oci://ghcr.io:99999/shop:1", "port of 'ghcr.io:99999'"),
])
def test_a_bad_locator_is_refused_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(PackError) as caught:
        parse_reference(text)
    assert repr(text) in str(caught.value) or text in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(("host", "insecure", "scheme"), [
    ("127.0.0.1:5000", "", "http"),
    ("localhost:5000", "", "http"),
    ("[::1]:5000", "", "http"),
    ("127.8.0.1", "", "http"),
    ("ghcr.io", "", "https"),
    ("10.0.0.5:5000", "", "https"),
    ("10.0.0.5:5000", "10.0.0.5:5000", "http"),
    ("registry.lan:5000", "other:1, registry.lan", "http"),
])
def test_only_loopback_and_listed_registries_get_plain_http(host: str, insecure: str,
                                                             scheme: str) -> None:
    options = OciOptions.from_settings(load_settings({"GREENTIC_OCI_INSECURE": insecure}))
    assert options.scheme(host) == scheme


def bundle_with(tmp_path: Path, pack: str) -> Path:
    path = tmp_path / "bundle.yaml"
    path.write_text(f"packs:\n  shop: {pack}\ntenants:\n  acme: {{packs: [shop]}}\n")
    return path


def test_an_oci_pack_with_a_digest_pin_loads(tmp_path: Path) -> None:
    bundle = load_bundle(bundle_with(
        tmp_path, f'{{oci: "oci://127.0.0.1:5000/packs/shop:1.0.0", digest: "{DIGEST}"}}'))
    source = bundle.packs["shop"]
    assert (source.locator, source.digest) == ("oci://127.0.0.1:5000/packs/shop:1.0.0", DIGEST)
    with pytest.raises(ConfigError, match="comes from oci://"):
        bundle.pack_dir("shop")


@pytest.mark.parametrize(("pack", "message"), [
    ("{}", "packs.shop: give exactly one of `path`"),
    ('{path: shop.gtpack, oci: "oci://h/shop:1"}', "packs.shop: give exactly one of `path`"),
    ('{oci: "oci://h/Shop:1"}', "packs.shop.oci: 'oci://h/Shop:1': repository part 'Shop'"),
    ('{oci: "h/shop:1"}', "packs.shop.oci: 'h/shop:1' is not an OCI reference"),
    ('{oci: "oci://h/shop:1", digest: "sha256:12"}', "packs.shop.digest: 'sha256:12' is not"),
    (f'{{path: shop.gtpack, digest: "{DIGEST}"}}', "packs.shop.digest: a digest pins an `oci`"),
    ('{oci: "oci://h/shop:1", tag: x}', "`tag`"),
])
def test_a_bad_pack_source_names_the_field(tmp_path: Path, pack: str, message: str) -> None:
    path = bundle_with(tmp_path, pack)
    with pytest.raises(ConfigError) as caught:
        load_bundle(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_the_artifact_manifest_is_deterministic_and_names_the_pack(tmp_path: Path) -> None:
    data = sign_pack(build_pack(write_source(tmp_path / "src")), KEY)
    encoded, layer_digest = pack_manifest(data, title="shop.gtpack")
    assert pack_manifest(data, title="shop.gtpack") == (encoded, layer_digest)
    manifest = msgspec.json.decode(encoded)
    assert manifest["mediaType"] == MANIFEST_MEDIA_TYPE
    assert manifest["artifactType"] == "application/vnd.greentic.gtpack.v1"
    assert manifest["config"] == {
        "mediaType": EMPTY_MEDIA_TYPE, "size": 2, "data": "e30=",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
    [layer] = manifest["layers"]
    assert layer["mediaType"] == GTPACK_MEDIA_TYPE and layer["size"] == len(data)
    assert layer["digest"] == layer_digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert manifest["annotations"]["io.greentic.pack.id"] == "shop"
    assert manifest["annotations"]["io.greentic.pack.version"] == "1.2.3"


def test_something_that_is_not_a_pack_is_not_pushed() -> None:
    with pytest.raises(PackError, match="not a ZIP archive"):
        pack_manifest(b"hello", title="x.gtpack")


def test_progress_is_reported_every_tenth() -> None:
    seen: list[int] = []
    report = ProgressLog(lambda done, total: seen.append(done), every_s=3600)
    for done in range(0, 1001, 7):
        report(done, 1000)
    report(1000, 1000)
    assert len(seen) == 10 and seen[-1] == 1000
    assert seen == sorted(set(seen))

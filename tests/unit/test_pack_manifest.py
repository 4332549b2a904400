"""`manifest.cbor`: canonical CBOR and a strict schema, errors naming the field."""

from pathlib import Path

import cbor2
import pytest

from greentic.errors import PackError
from greentic.pack.archive import build_pack, read_pack, read_zip
from greentic.pack.manifest import (
    MANIFEST_ENTRY,
    check_version,
    decode_manifest,
    encode_manifest,
)
from tests.unit.pack_fixtures import KEY, TRUST, rezip, write_source


@pytest.fixture
def manifest_bytes(tmp_path: Path) -> bytes:
    return read_zip(build_pack(write_source(tmp_path / "shop")))[MANIFEST_ENTRY]


def test_the_manifest_round_trips_through_canonical_cbor(manifest_bytes: bytes) -> None:
    manifest = decode_manifest(manifest_bytes)
    assert encode_manifest(manifest) == manifest_bytes
    assert cbor2.dumps(cbor2.loads(manifest_bytes), canonical=True) == manifest_bytes


def test_non_canonical_cbor_is_refused(manifest_bytes: bytes) -> None:
    raw = cbor2.loads(manifest_bytes)
    shuffled = dict(reversed(list(raw.items())))  # same map, keys out of canonical order
    with pytest.raises(PackError, match=r"manifest.cbor: not canonical CBOR"):
        decode_manifest(cbor2.dumps(shuffled))


def test_bytes_that_are_not_cbor_are_refused() -> None:
    with pytest.raises(PackError, match=r"manifest.cbor: not CBOR"):
        decode_manifest(b"\xff\xff")


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.pop("publisher"), r"wrong schema: .*`publisher`"),
    (lambda m: m.update(extra=1), r"wrong schema: .*`extra`"),
    (lambda m: m["components"][0].update(world="rootkit"), r"wrong schema: .*\$.components\[0\]"),
    (lambda m: m.update(format=2), r"manifest.cbor:format: format 2 is not supported"),
    (lambda m: m.update(version="one"), r"manifest.cbor:version: 'one' is not a semantic"),
    (lambda m: m["components"][0].update(version="2"),
     r"manifest.cbor:components\[0\].version: '2' is not a semantic"),
])
def test_wrong_schema_is_refused_naming_the_field(manifest_bytes: bytes, change,
                                                  message: str) -> None:
    raw = cbor2.loads(manifest_bytes)
    change(raw)
    with pytest.raises(PackError, match=message):
        decode_manifest(cbor2.dumps(raw, canonical=True))


def test_a_signed_non_canonical_manifest_is_still_refused(tmp_path: Path) -> None:
    """Even a trusted signer cannot ship a manifest two readers could decode differently."""
    signed = build_pack(write_source(tmp_path / "shop"))

    def reorder(entries: dict[str, bytes]) -> None:
        raw = cbor2.loads(entries[MANIFEST_ENTRY])
        entries[MANIFEST_ENTRY] = cbor2.dumps(dict(reversed(list(raw.items()))))

    with pytest.raises(PackError, match=r"manifest.cbor: not canonical"):
        read_pack(rezip(signed, reorder, sbom=True, sign=KEY), trust=TRUST)


@pytest.mark.parametrize("version", ["1.0.0", "0.1.0-rc.1", "1.2.3+build.5", "10.20.30"])
def test_semantic_versions_are_accepted(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize("version", ["1.0", "01.0.0", "v1.0.0", "1.0.0-", ""])
def test_other_versions_are_refused(version: str) -> None:
    with pytest.raises(PackError, match=r"is not a semantic version"):
        check_version(version)

"""Fuzzing the `.gtpack` reader and the `manifest.cbor` decoder: whatever the bytes, the answer
is a checked pack or a PackError, and a signed pack whose content changed is never accepted.

Examples per property are in `@settings`; the whole module runs in a few seconds.
"""

import io
import struct
import warnings
import zipfile
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greentic.errors import PackError
from greentic.pack.archive import build_pack, read_pack, read_zip, sign_pack, write_zip
from greentic.pack.manifest import MANIFEST_ENTRY, PackManifest, decode_manifest
from tests.mutation import MUTATIONS, mutate
from tests.unit.pack_fixtures import KEY, TRUST, write_source

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LOCAL_HEADER = b"PK\x03\x04"
CENTRAL_HEADER = b"PK\x01\x02"
# offsets of the 4-byte size and CRC fields in each header kind (APPNOTE 4.3.7 and 4.3.12)
HEADER_FIELDS = {LOCAL_HEADER: (14, 18, 22), CENTRAL_HEADER: (16, 20, 24)}


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return sign_pack(build_pack(write_source(tmp_path_factory.mktemp("src") / "shop")), KEY)


@pytest.fixture(scope="module")
def original(signed: bytes) -> dict[str, bytes]:
    return read_zip(signed)


@pytest.fixture(scope="module")
def size_fields(signed: bytes) -> list[int]:
    """Offsets of every size and CRC field of every local and central header."""
    return [start + offset for marker, offsets in HEADER_FIELDS.items()
            for start in range(len(signed)) if signed.startswith(marker, start)
            for offset in offsets]


def accepted_unchanged(data: bytes, original: dict[str, bytes]) -> None:
    """A trusted read of `data` refuses it with a PackError or yields exactly `original`."""
    try:
        pack = read_pack(data, trust=TRUST)
    except PackError:
        return
    assert pack.entries == original, "a modified signed pack was accepted"
    assert pack.signed_by is not None


def read_unverified(data: bytes) -> None:
    """Without trust (inspect), any input still ends in a pack or a PackError."""
    try:
        read_pack(data, trust=None)
    except PackError:
        pass


class TestArchiveBytes:
    @FUZZ
    @given(data=st.binary(max_size=4096))
    def test_random_bytes_end_in_a_pack_error(self, data: bytes) -> None:
        with pytest.raises(PackError):
            read_pack(data, trust=TRUST)
        read_unverified(data)

    @FUZZ
    @given(prefix=st.binary(max_size=64), data=st.data())
    def test_a_valid_archive_with_random_bytes_before_it_is_refused_or_unchanged(
            self, signed, original, prefix: bytes, data) -> None:
        """ZIP readers search for the end record: leading junk must not smuggle content."""
        cut = data.draw(st.integers(0, len(signed)))
        accepted_unchanged(prefix + signed[cut:], original)

    @FUZZ
    @given(data=st.data())
    def test_flipped_bytes_are_refused_or_change_nothing(self, signed, original, data) -> None:
        mutated = bytearray(signed)
        for _ in range(data.draw(st.integers(1, 8))):
            offset = data.draw(st.integers(0, len(mutated) - 1))
            mutated[offset] ^= data.draw(st.integers(1, 255))
        accepted_unchanged(bytes(mutated), original)
        read_unverified(bytes(mutated))

    @FUZZ
    @given(data=st.data())
    def test_truncated_or_spliced_archives_are_refused(self, signed, original, data) -> None:
        start = data.draw(st.integers(0, len(signed)))
        end = data.draw(st.integers(start, len(signed)))
        accepted_unchanged(signed[:start] + signed[end:], original)
        accepted_unchanged(signed[:start], original)

    @FUZZ
    @given(data=st.data(), value=st.sampled_from([0, 1, 7, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])
           | st.integers(0, 0xFFFFFFFF))
    def test_forged_sizes_and_crcs_in_headers_are_refused(self, signed, original, size_fields,
                                                          data, value: int) -> None:
        at = data.draw(st.sampled_from(size_fields))
        forged = signed[:at] + struct.pack("<I", value) + signed[at + 4:]
        accepted_unchanged(forged, original)
        read_unverified(forged)


def rewritten(entries: list[tuple[str, bytes]]) -> bytes:
    """The entries as a ZIP in the given order, duplicates kept."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names: wanted here
        for name, content in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


class TestArchiveEntries:
    @FUZZ
    @given(data=st.data())
    def test_reordered_duplicated_or_dropped_entries_never_change_what_is_accepted(
            self, original, data) -> None:
        names = sorted(original)
        order = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=12))
        content = {name: original[name] for name in names}
        if data.draw(st.booleans()):  # swap the bytes of two entries
            a, b = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
            content[a], content[b] = content[b], content[a]
        accepted_unchanged(rewritten([(name, content[name]) for name in order]), original)

    @FUZZ
    @given(data=st.data(), extra=st.binary(max_size=64),
           name=st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
    def test_an_entry_added_or_replaced_is_refused(self, original, data, extra: bytes,
                                                   name: str) -> None:
        entries = dict(original)
        target = data.draw(st.sampled_from([*sorted(entries), name]))
        if entries.get(target) == extra:
            return
        entries[target] = extra
        try:
            forged = write_zip(entries)
        except (ValueError, UnicodeEncodeError):  # a name zipfile itself will not write
            return
        with pytest.raises(PackError):
            read_pack(forged, trust=TRUST)


# --- manifest.cbor ---------------------------------------------------------------------------

CBOR_LEAVES = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=True) | st.text(max_size=20) | st.binary(max_size=20))
CBOR_VALUES = st.recursive(
    CBOR_LEAVES,
    lambda inner: (st.lists(inner, max_size=5)
                   | st.dictionaries(st.text(max_size=12) | st.integers(-5, 5), inner,
                                     max_size=5)
                   | st.builds(cbor2.CBORTag, st.integers(0, 300), inner)),
    max_leaves=25)


def manifest_data(signed: bytes) -> Any:
    return cbor2.loads(read_zip(signed)[MANIFEST_ENTRY])


def decodes_or_pack_error(data: bytes) -> PackManifest | None:
    try:
        return decode_manifest(data)
    except PackError as exc:
        assert exc.entry.startswith(MANIFEST_ENTRY) or exc.entry.startswith("flows/"), exc
        return None


class TestManifestDecoder:
    @FUZZ
    @given(data=st.binary(max_size=512))
    def test_random_bytes_end_in_a_pack_error(self, data: bytes) -> None:
        decodes_or_pack_error(data)

    @FUZZ
    @given(value=CBOR_VALUES)
    def test_random_cbor_values_end_in_a_pack_error(self, value: Any) -> None:
        try:
            data = cbor2.dumps(value, canonical=True)
        except (cbor2.CBOREncodeError, ValueError, TypeError):
            return
        assert decodes_or_pack_error(data) is None

    @FUZZ
    @given(path=st.lists(st.integers(0, 20), max_size=5), action=MUTATIONS, new=CBOR_VALUES)
    def test_mutated_canonical_manifests_decode_or_end_in_a_pack_error(
            self, signed, path: list[int], action: str, new: Any) -> None:
        try:
            data = cbor2.dumps(mutate(manifest_data(signed), path, action, new), canonical=True)
        except (cbor2.CBOREncodeError, ValueError, TypeError):
            return
        decodes_or_pack_error(data)

    @FUZZ
    @given(data=st.data())
    def test_non_canonical_or_corrupted_encodings_end_in_a_pack_error(self, signed,
                                                                      data) -> None:
        encoded = bytearray(read_zip(signed)[MANIFEST_ENTRY])
        offset = data.draw(st.integers(0, len(encoded) - 1))
        encoded[offset] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(encoded)))
        decodes_or_pack_error(bytes(encoded[:cut]))
        decodes_or_pack_error(bytes(encoded))


def test_deeply_nested_cbor_is_a_pack_error_not_a_crash() -> None:
    """10 000 nested arrays: cbor2 recurses; the decoder turns that into a PackError."""
    with pytest.raises(PackError, match=r"manifest.cbor"):
        decode_manifest(b"\x81" * 100_000 + b"\x00")


def test_the_fixture_pack_reads(signed: bytes) -> None:
    """The fuzz targets start from a pack that reads (else every property is vacuous)."""
    assert read_pack(signed, trust=TRUST).manifest.pack_id == "shop"

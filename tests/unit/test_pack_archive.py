"""`.gtpack` build and read: determinism, layout, and every malformed archive refused with the
offending entry named."""

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest

from greentic.errors import GreenticError, PackError
from greentic.pack.archive import (
    PackLimits,
    build_pack,
    read_pack,
    read_pack_file,
    read_zip,
    sign_pack,
)
from greentic.pack.manifest import MANIFEST_ENTRY, decode_manifest, encode_manifest
from tests.unit.pack_fixtures import KEY, LOOKUP, TRUST, raw_zip, rezip, write_source


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_source(tmp_path / "shop")


@pytest.fixture
def signed(source: Path) -> bytes:
    return sign_pack(build_pack(source), KEY)


class TestBuild:
    def test_the_same_source_builds_byte_identical_archives(self, source: Path,
                                                            tmp_path: Path) -> None:
        """Twice in a row, and from a copy with other timestamps and file modes."""
        first = build_pack(source)
        assert build_pack(source) == first
        copy = write_source(tmp_path / "copy" / "shop")
        (copy / "flows" / "welcome.ygtc").chmod(0o600)
        assert build_pack(copy) == first
        assert sign_pack(first, KEY) == sign_pack(build_pack(copy), KEY)

    def test_entries_are_sorted_stored_dated_1980_and_mode_0644(self, signed: bytes) -> None:
        infos = zipfile.ZipFile(io.BytesIO(signed)).infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names) == [
            "assets/img/logo.svg", "assets/readme.txt",
            "components/orders@0.2.0/component.wasm", "flows/lookup/flow.ygtc",
            "flows/welcome/flow.ygtc", "manifest.cbor", "sbom.json", "signatures/pack.sig"]
        for info in infos:
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == stat.S_IFREG | 0o644

    def test_manifest_records_components_flows_and_digests(self, source: Path,
                                                           signed: bytes) -> None:
        pack = read_pack(signed, trust=TRUST)
        manifest = pack.manifest
        assert (manifest.pack_id, manifest.version, manifest.kind, manifest.publisher) == \
            ("shop", "1.2.3", "application", "acme")
        [orders] = manifest.components
        wasm = (source / "orders.wasm").read_bytes()
        assert (orders.id, orders.version, orders.world, orders.operations) == \
            ("orders", "0.2.0", "node", ["lookup"])
        assert orders.capabilities.host == ["state"]
        assert orders.sha256 == hashlib.sha256(wasm).hexdigest() and orders.size == len(wasm)
        flows = {flow.id: flow for flow in manifest.flows}
        assert flows["lookup"].components == ["orders"]
        assert (flows["welcome"].entrypoints, flows["welcome"].tags) == (["default"], ["demo"])
        assert manifest.assets == ["assets/img/logo.svg", "assets/readme.txt"]
        sbom = {file.path: file for file in pack.sbom.files}
        assert set(sbom) == set(pack.entries) - {"sbom.json", "signatures/pack.sig"}
        assert sbom["assets/readme.txt"].sha256 == hashlib.sha256(b"hello\n").hexdigest()

    def test_bad_version_is_refused_naming_the_field(self, source: Path) -> None:
        text = (source / "pack.yaml").read_text().replace("version: 1.2.3", "version: v1.2")
        (source / "pack.yaml").write_text(text)
        with pytest.raises(PackError, match=r"pack.yaml:version: .v1.2. is not a semantic"):
            build_pack(source)

    def test_flow_calling_a_missing_component_is_refused_at_build(self, tmp_path: Path) -> None:
        source = write_source(tmp_path / "shop", with_component=False)
        (source / "flows" / "lookup.ygtc").write_text(LOOKUP)
        (source / "pack.yaml").write_text((source / "pack.yaml").read_text().replace(
            "flows:\n", "flows:\n  - {id: lookup, file: flows/lookup.ygtc}\n"))
        with pytest.raises(PackError, match=r"flows/lookup/flow.ygtc: flow 'lookup' calls "
                                            r"component\(s\) \['orders'\]"):
            build_pack(source)

    def test_symlink_in_the_source_assets_is_refused(self, source: Path) -> None:
        (source / "assets" / "link").symlink_to("/etc/passwd")
        with pytest.raises(PackError, match=r"assets/link: symbolic link"):
            build_pack(source)


class TestTamperedEntries:
    def test_a_changed_byte_in_any_entry_is_refused_naming_it(self, signed: bytes) -> None:
        for name in read_zip(signed):
            if name in ("signatures/pack.sig", "sbom.json"):
                continue

            def flip(entries: dict[str, bytes], name: str = name) -> None:
                content = bytearray(entries[name])
                content[len(content) // 2] ^= 0x01
                entries[name] = bytes(content)

            with pytest.raises(PackError) as caught:
                read_pack(rezip(signed, flip), trust=TRUST)
            assert caught.value.entry == name, caught.value

    def test_a_changed_byte_in_the_archive_file_is_refused_naming_the_entry(
            self, signed: bytes) -> None:
        offset = signed.index(b"welcome: ")
        data = signed[:offset] + b"W" + signed[offset + 1:]
        with pytest.raises(PackError, match=r"flows/welcome/flow.ygtc: unreadable: "):
            read_pack(data, trust=TRUST)

    def test_a_tampered_entry_with_a_regenerated_sbom_fails_the_signature(
            self, signed: bytes) -> None:
        def edit(entries: dict[str, bytes]) -> None:
            name = "flows/welcome/flow.ygtc"
            entries[name] = entries[name].replace(b"welcome", b"pwned!!")
        with pytest.raises(PackError, match=r"signatures/pack.sig: signed digest does not match"):
            read_pack(rezip(signed, edit, sbom=True), trust=TRUST)

    def test_a_tampered_manifest_is_refused(self, signed: bytes) -> None:
        def edit(entries: dict[str, bytes]) -> None:
            manifest = decode_manifest(entries[MANIFEST_ENTRY])
            manifest.components[0].capabilities.host.append("http")  # grant itself more
            entries[MANIFEST_ENTRY] = encode_manifest(manifest)

        with pytest.raises(PackError) as caught:
            read_pack(rezip(signed, edit), trust=TRUST)
        assert caught.value.entry == "manifest.cbor"
        with pytest.raises(PackError, match=r"signatures/pack.sig: signed digest"):
            read_pack(rezip(signed, edit, sbom=True), trust=TRUST)

    def test_a_missing_entry_is_refused_naming_it(self, signed: bytes) -> None:
        with pytest.raises(PackError, match=r"assets/readme.txt: missing entry"):
            read_pack(rezip(signed, lambda e: e.pop("assets/readme.txt")), trust=TRUST)
        with pytest.raises(PackError, match=r"manifest.cbor: missing entry"):
            read_pack(rezip(signed, lambda e: e.pop("manifest.cbor")), trust=TRUST)

    def test_an_extra_entry_is_refused_naming_it(self, signed: bytes) -> None:
        def add(entries: dict[str, bytes]) -> None:
            entries["assets/extra.txt"] = b"surprise"

        with pytest.raises(PackError, match=r"assets/extra.txt: extra entry: not listed in the "
                                            "SBOM"):
            read_pack(rezip(signed, add), trust=TRUST)
        with pytest.raises(PackError, match=r"signatures/pack.sig"):
            read_pack(rezip(signed, add, sbom=True), trust=TRUST)
        # even re-signed (by a trusted key), an entry the manifest does not describe is refused
        with pytest.raises(PackError, match=r"assets/extra.txt: extra entry: not described"):
            read_pack(rezip(signed, add, sbom=True, sign=KEY), trust=TRUST)

    def test_a_flow_calling_a_component_the_pack_lacks_is_refused(self, signed: bytes) -> None:
        def drop_component(entries: dict[str, bytes]) -> None:
            manifest = decode_manifest(entries[MANIFEST_ENTRY])
            manifest.components = []
            for flow in manifest.flows:
                flow.components = []  # hide it from the manifest too: the flow still calls it
            entries[MANIFEST_ENTRY] = encode_manifest(manifest)
            del entries["components/orders@0.2.0/component.wasm"]

        with pytest.raises(PackError, match=r"flows/lookup/flow.ygtc: flow 'lookup' calls "
                                            r"component\(s\) \['orders'\]"):
            read_pack(rezip(signed, drop_component, sbom=True, sign=KEY), trust=TRUST)


class TestMalformedArchives:
    @pytest.mark.parametrize("name", ["../x", "flows/../../x", "/etc/passwd", "C:/x"])
    def test_zip_slip_paths_are_refused(self, name: str) -> None:
        with pytest.raises(PackError, match=r"zip-slip") as caught:
            read_zip(raw_zip([(name, b"x")]))
        assert caught.value.entry == name

    def test_a_symlink_entry_is_refused(self) -> None:
        info = zipfile.ZipInfo("assets/link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        with pytest.raises(PackError, match=r"assets/link: symbolic link"):
            read_zip(raw_zip([(info, b"/etc/passwd")]))

    def test_a_directory_entry_is_refused(self) -> None:
        with pytest.raises(PackError, match=r"assets/: directory entry"):
            read_zip(raw_zip([("assets/", b"")]))

    def test_duplicate_entry_names_are_refused(self) -> None:
        with pytest.warns(UserWarning):  # zipfile warns while the test writes it
            data = raw_zip([("flows/a.ygtc", b"one"), ("flows/a.ygtc", b"two")])
        with pytest.raises(PackError, match=r"flows/a.ygtc: entry name appears twice"):
            read_zip(data)

    def test_an_archive_over_the_size_limit_is_refused(self, signed: bytes,
                                                       tmp_path: Path) -> None:
        limits = PackLimits(max_archive_bytes=len(signed) - 1)
        with pytest.raises(PackError, match=r"over the limit"):
            read_pack(signed, trust=TRUST, limits=limits)
        (tmp_path / "big.gtpack").write_bytes(signed)
        with pytest.raises(PackError, match=r"big.gtpack: archive is .* over the limit"):
            read_pack_file(tmp_path / "big.gtpack", trust=TRUST, limits=limits)

    def test_entries_over_the_total_uncompressed_limit_are_refused(self, signed: bytes) -> None:
        with pytest.raises(PackError, match=r"more than 1000 bytes uncompressed"):
            read_pack(signed, trust=TRUST, limits=PackLimits(max_total_bytes=1000))

    def test_a_compressed_entry_is_refused(self) -> None:
        """A deflated megabyte of zeros is ~1 KB: the classic bomb; packs are stored only."""
        data = raw_zip([("assets/zeros", bytes(1 << 20))], zipfile.ZIP_DEFLATED)
        assert len(data) < 10_000
        with pytest.raises(PackError, match=r"assets/zeros: compressed entry"):
            read_zip(data)

    def test_a_declared_size_unlike_the_actual_one_is_refused(self, signed: bytes) -> None:
        central = signed.index(b"PK\x01\x02")  # the first entry's central directory record
        declared = central + 24  # its uncompressed size
        forged = signed[:declared] + (10**9).to_bytes(4, "little") + signed[declared + 4:]
        with pytest.raises(PackError, match=r"assets/img/logo.svg: declares 1000000000 bytes but "
                                            "holds 7"):
            read_zip(forged)

    def test_garbage_is_not_a_pack(self) -> None:
        with pytest.raises(PackError, match=r"not a ZIP archive"):
            read_zip(b"not a zip at all")

    def test_pack_errors_are_greentic_errors(self) -> None:
        assert issubclass(PackError, GreenticError)


class TestHeadersZipfileCannotRead:
    """Found by tests/unit/test_pack_fuzz.py: zipfile raises NotImplementedError for these."""

    def test_a_zip_version_zipfile_does_not_support_is_a_pack_error(self, signed: bytes) -> None:
        central = signed.index(b"PK\x01\x02")
        forged = signed[:central + 6] + bytes([84]) + signed[central + 7:]  # needs version 8.4
        with pytest.raises(PackError, match=r"not a ZIP archive: "):
            read_zip(forged)

    def test_a_strong_encryption_flag_is_a_pack_error(self, signed: bytes) -> None:
        flags = signed.index(b"PK\x01\x02") + 8  # the first entry's general-purpose flags
        forged = signed[:flags] + bytes([signed[flags] | 0x40]) + signed[flags + 1:]
        with pytest.raises(PackError, match=r"assets/img/logo.svg: unreadable: "):
            read_zip(forged)

"""Greentic's own `.gtpack` archives (both layouts): told apart from ours, inspected, verified
entry by entry and signature by signature, and written as Greentic's packc writes them."""

import base64
import datetime
import io
import json
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from greentic.cli.main import cli
from greentic.errors import GreenticError, PackError
from greentic.pack.greentic_format import (
    GreenticComponentInput,
    GreenticFlowInput,
    GreenticTrust,
    detect_format,
    sign_greentic_pack,
    verify_greentic_pack,
    write_greentic_pack,
)
from greentic.pack.greentic_format.cbor import decode_cbor, encode_cbor
from greentic.pack.greentic_format.entries import read_entries
from greentic.pack.greentic_format.flow import compile_flow
from greentic.pack.greentic_format.manifest import resolve_symbols
from greentic.pack.greentic_format.signature import unsigned_manifest_bytes
from greentic.pack.greentic_format.write import seal_greentic_entries
from tests.greentic_files import greentic_file

RUNNER = "greentic-ai/greentic-runner"
PACK = "greenticai/greentic-pack"
DEMO = "greenticai/greentic-demo"
INTEGRATION = "greenticai/greentic-integration"
PROVIDERS = "greenticai/greentic-messaging-providers"
ECHO = "crates/test-packs/echo-pack"
ECHO_COMPONENT = "ai.greentic.component-echo"

# (repo, path, pack id, what verify says about the signature)
VERIFIED = [
    (RUNNER, "examples/packs/demo.gtpack", "ai.greentic.runner.example", "self-signed"),
    (PACK, "crates/packc/tests/fixtures/validators/noop-validator.gtpack",
     "greentic.validators.noop", "self-signed"),
    (RUNNER, "tests/fixtures/demo.gtpack", "ai.greentic.demo.local", "unsigned"),
    (PROVIDERS, "dist/packs/messaging-telegram.gtpack", "messaging-telegram", "unsigned"),
    (DEMO, "demos/hr-onboarding.gtpack", "greentic.hr-onboarding.demo", "unsigned"),
    (DEMO, "demos/incident-demo.gtpack", "incident-demo.pack", "unsigned"),
    (DEMO, "demos/redbutton-demo.gtpack", "redbutton-demo.pack", "unsigned"),
    (DEMO, "demos/telco-x.gtpack", "telco-x", "unsigned"),
    (DEMO, "apps/quickstart-app/dist/quickstart-app.gtpack", "quickstart-app", "unsigned"),
    (DEMO, "apps/quickstart-app/dist/msg-event-app.gtpack", "helpdesk-bot", "unsigned"),
]
# demo archives whose manifest.cbor (and pack.lock.cbor) changed after sbom.cbor was written
REPACKED = ["cards-demo", "cloud-deploy-demo-app", "helpdesk-itsm", "quickstart", "sales-crm",
            "supply-chain"]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GREENTIC_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("GREENTIC_PACK_POLICY", raising=False)
    return CliRunner()


def run(runner: CliRunner, *args: str | Path, code: int = 0) -> str:
    result = runner.invoke(cli, ["pack", *map(str, args)])
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception  # a refusal, never a traceback
    return result.output


def echo_file(path: str) -> Path:
    return greentic_file(INTEGRATION, ECHO) / path


def write_echo(**options: object) -> bytes:
    """The echo-pack written from its sources, as `greentic-pack build` reads them."""
    component = echo_file(f"components/{ECHO_COMPONENT}")
    return write_greentic_pack(
        pack_id="echo-pack", version="0.1.0", kind="application", publisher="Greentic",
        flows=[GreenticFlowInput(id="echo", source=echo_file("flows/main.ygtc").read_text(),
                                 tags=["default"], entrypoints=["default"])],
        components=[GreenticComponentInput(
            id=ECHO_COMPONENT, version="0.1.0",
            wasm=(component / "component_echo.wasm").read_bytes(),
            manifest=json.loads((component / "component.manifest.json").read_text()))],
        assets={name: echo_file(name).read_bytes()
                for name in ("pack.lock.json", "regen-pack.sh", "regen.sh")},
        pack_lock=echo_file("pack.lock.cbor").read_bytes(), **options)  # type: ignore[arg-type]


def rezip(data: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    """The same archive with its entries changed by `change`, the SBOM left as it was."""
    entries = read_entries(data)
    change(entries)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, content in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def flip_byte(entries: dict[str, bytes], name: str) -> None:
    content = bytearray(entries[name])
    content[len(content) // 2] ^= 0x01
    entries[name] = bytes(content)


def save(tmp_path: Path, data: bytes, name: str = "pack.gtpack") -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


def certificate(subject: str, key: Ed25519PrivateKey, issuer: str | None = None,
                issuer_key: Ed25519PrivateKey | None = None) -> x509.Certificate:
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or subject)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start.replace(year=2100))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                           critical=True)
            .sign(issuer_key or key, None))


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certificates)


class TestRealArchives:
    @pytest.mark.parametrize(("repo", "path", "pack_id", "signed"), VERIFIED,
                             ids=[row[1].rsplit("/", 1)[-1] for row in VERIFIED])
    def test_a_real_archive_verifies_with_every_entry_checked_against_its_sbom(
            self, runner: CliRunner, repo: str, path: str, pack_id: str, signed: str) -> None:
        """Greentic's own builds verify: every entry's BLAKE3 matches, the signature is what
        it is (a dev certificate, self-signed, or none) and is reported as such."""
        shown = run(runner, "verify", greentic_file(repo, path))
        assert f"verified: {pack_id}" in shown and "every entry matches its BLAKE3" in shown
        assert signed in shown
        if signed == "self-signed":
            assert "Greentic's per-build dev certificate" in shown
            assert "anchored to nothing you configured" in shown

    @pytest.mark.parametrize("demo", REPACKED)
    def test_a_demo_whose_manifest_changed_after_its_sbom_is_refused_naming_manifest_cbor(
            self, runner: CliRunner, demo: str) -> None:
        """greentic-demo's repacked archives no longer match their sbom.cbor; Greentic's
        reader only warns about that, this one refuses and names the entry."""
        refused = run(runner, "verify", greentic_file(DEMO, f"demos/{demo}.gtpack"), code=1)
        assert "manifest.cbor: BLAKE3" in refused and "sbom.cbor" in refused

    def test_inspect_names_the_format_and_the_manifest_essentials(self,
                                                                  runner: CliRunner) -> None:
        """inspect of a current-layout archive shows its id, kind, publisher, components
        with versions and worlds, flows with entrypoints, assets and signature."""
        shown = run(runner, "inspect", echo_file("dist/echo-pack.gtpack"))
        assert "format     Greentic (current layout)" in shown
        assert "pack       echo-pack 0.1.0 (application, publisher Greentic)" in shown
        assert (f"component  {ECHO_COMPONENT}@0.1.0 "
                "world=greentic:component/component@0.5.0") in shown
        assert "flow       echo entrypoints=default start=echo" in shown
        assert "assets     3" in shown and "signature  none (unsigned)" in shown
        assert "components/ai.greentic.component-echo.wasm" in shown

    def test_inspect_of_a_legacy_archive_shows_its_signature_files(self,
                                                                   runner: CliRunner) -> None:
        """The older layout is told apart and its chain named (not verified by inspect)."""
        shown = run(runner, "inspect", greentic_file(RUNNER, "examples/packs/demo.gtpack"))
        assert "format     Greentic (legacy layout)" in shown
        assert "ai.greentic.runner.example 0.1.0" in shown
        assert "signatures/pack.sig + signatures/chain.pem (not verified" in shown
        assert '"format": "greentic-legacy"' in run(
            runner, "inspect", greentic_file(RUNNER, "examples/packs/demo.gtpack"), "--json")

    def test_deflated_entries_are_read(self, runner: CliRunner) -> None:
        """greentic-demo's archives are deflated; inspect reads them (digests unchecked)."""
        shown = run(runner, "inspect", greentic_file(DEMO, "demos/cards-demo.gtpack"))
        assert "cards-demo 0.1.0" in shown and "deflated" in shown

    def test_trusting_the_archives_own_dev_certificate_anchors_it(
            self, runner: CliRunner, tmp_path: Path) -> None:
        """--trust with a certificate of the chain anchors it, and says by what."""
        demo = greentic_file(RUNNER, "examples/packs/demo.gtpack")
        chain = tmp_path / "chain.pem"
        chain.write_bytes(read_entries(demo.read_bytes())["signatures/chain.pem"])
        shown = run(runner, "verify", demo, "--trust", chain)
        assert "anchored by the trusted certificate CN=greentic-dev-local" in shown

    def test_a_dev_signed_archive_is_refused_when_you_trust_someone_else(
            self, runner: CliRunner, tmp_path: Path) -> None:
        """With trust configured (strict), Greentic's self-signed dev chain is refused."""
        other = tmp_path / "other.pem"
        key = Ed25519PrivateKey.generate()
        other.write_bytes(pem(certificate("Someone Else", key)))
        refused = run(runner, "verify", greentic_file(RUNNER, "examples/packs/demo.gtpack"),
                      "--trust", other, code=1)
        assert "signatures/pack.sig:" in refused and "anchored by none" in refused


class TestTamperedCopies:
    def test_a_flipped_byte_in_a_component_is_refused_naming_it(self, runner: CliRunner,
                                                                tmp_path: Path) -> None:
        """One bit changed in the wasm: refused, the component's entry named."""
        original = echo_file("dist/echo-pack.gtpack").read_bytes()
        wasm = f"components/{ECHO_COMPONENT}.wasm"
        tampered = save(tmp_path, rezip(original, lambda e: flip_byte(e, wasm)))
        refused = run(runner, "verify", tampered, code=1)
        assert f"{wasm}: BLAKE3" in refused and "tampered or corrupt" in refused

    def test_a_dropped_entry_is_refused_naming_it(self, runner: CliRunner,
                                                  tmp_path: Path) -> None:
        """An entry the SBOM lists but the archive lacks."""
        original = echo_file("dist/echo-pack.gtpack").read_bytes()
        tampered = save(tmp_path, rezip(original, lambda e: e.pop("assets/regen.sh")))
        refused = run(runner, "verify", tampered, code=1)
        assert "assets/regen.sh: missing entry: listed in sbom.cbor" in refused

    def test_an_added_entry_is_refused_naming_it(self, runner: CliRunner,
                                                 tmp_path: Path) -> None:
        """An entry the SBOM does not list."""
        original = echo_file("dist/echo-pack.gtpack").read_bytes()
        tampered = save(tmp_path, rezip(original, lambda e: e.update({"assets/x.sh": b"rm"})))
        refused = run(runner, "verify", tampered, code=1)
        assert "assets/x.sh: extra entry: not listed in sbom.cbor" in refused

    def test_a_corrupted_signature_is_refused_naming_pack_sig(self, runner: CliRunner,
                                                              tmp_path: Path) -> None:
        """A signature byte changed in a signed legacy archive."""
        def corrupt(entries: dict[str, bytes]) -> None:
            envelope = json.loads(entries["signatures/pack.sig"])
            signature = bytearray(base64.urlsafe_b64decode(envelope["sig"] + "=="))
            signature[0] ^= 0x01
            envelope["sig"] = base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
            entries["signatures/pack.sig"] = json.dumps(envelope).encode()

        original = greentic_file(RUNNER, "examples/packs/demo.gtpack").read_bytes()
        refused = run(runner, "verify", save(tmp_path, rezip(original, corrupt)), code=1)
        assert "signatures/pack.sig: signature does not verify with the leaf certificate " \
               "CN=greentic-dev-local" in refused

    def test_a_chain_swapped_for_another_certificate_is_refused(self, runner: CliRunner,
                                                                tmp_path: Path) -> None:
        """Another self-signed certificate in chain.pem: the signature is not its key's."""
        other = pem(certificate("greentic-dev-local", Ed25519PrivateKey.generate()))
        original = greentic_file(RUNNER, "examples/packs/demo.gtpack").read_bytes()
        tampered = rezip(original, lambda e: e.update({"signatures/chain.pem": other}))
        refused = run(runner, "verify", save(tmp_path, tampered), code=1)
        assert "signatures/pack.sig:" in refused

    def test_a_legacy_component_changed_is_refused_naming_it(self, runner: CliRunner,
                                                             tmp_path: Path) -> None:
        """The older layout's entries are checked against sbom.json the same way."""
        original = greentic_file(PACK, "crates/packc/tests/fixtures/validators/"
                                       "noop-validator.gtpack").read_bytes()
        wasm = "components/noop-validator@0.1.0/component.wasm"
        refused = run(runner, "verify", save(tmp_path, rezip(original,
                                                             lambda e: flip_byte(e, wasm))),
                      code=1)
        assert f"{wasm}: BLAKE3" in refused and "sbom.json" in refused

    def test_a_signature_without_its_chain_is_refused(self, runner: CliRunner,
                                                      tmp_path: Path) -> None:
        """pack.sig without chain.pem cannot be checked: refused naming the missing file."""
        original = greentic_file(RUNNER, "examples/packs/demo.gtpack").read_bytes()
        tampered = rezip(original, lambda e: e.pop("signatures/chain.pem"))
        refused = run(runner, "verify", save(tmp_path, tampered), code=1)
        assert "signatures/chain.pem: signature files incomplete" in refused


class TestGarbage:
    def test_a_file_that_is_no_zip_is_refused_naming_it(self, runner: CliRunner,
                                                        tmp_path: Path) -> None:
        """Greentic's integration repo has `.gtpack` files that are JSON: a clear refusal."""
        junk = save(tmp_path, b'{"id": "hello-pack"}', "hello.gtpack")
        assert f"refused: {junk}: not a ZIP archive" in run(runner, "verify", junk, code=1)
        assert "not a ZIP archive" in run(runner, "inspect", junk, code=1)

    @pytest.mark.parametrize(("change", "message"), [
        (lambda e: e.update({"manifest.cbor": e["manifest.cbor"][:100]}),
         "manifest.cbor: truncated CBOR"),
        (lambda e: e.pop("manifest.cbor"), "manifest.cbor: missing entry"),
        (lambda e: e.update({"manifest.cbor": encode_cbor({"schema_version": "pack-v1"})}),
         "manifest.cbor: no `symbols` table"),
    ], ids=["truncated", "missing", "no-symbols"])
    def test_a_broken_manifest_under_a_matching_sbom_is_refused_naming_it(
            self, runner: CliRunner, tmp_path: Path, change: Callable[[dict[str, bytes]], None],
            message: str) -> None:
        """The SBOM re-made to match: the manifest itself is what is refused."""
        entries = read_entries(echo_file("dist/echo-pack.gtpack").read_bytes())
        change(entries)
        broken = save(tmp_path, seal_greentic_entries(entries))
        assert message in run(runner, "verify", broken, code=1)
        assert message in run(runner, "inspect", broken, code=1)

    def test_a_symbol_index_out_of_range_is_refused_naming_the_field(self) -> None:
        """An index past the end of its table names the field and the table."""
        entries = read_entries(echo_file("dist/echo-pack.gtpack").read_bytes())
        raw = decode_cbor(entries["manifest.cbor"], "manifest.cbor")
        raw["components"][0]["id"] = 7
        entries["manifest.cbor"] = encode_cbor(raw)
        with pytest.raises(PackError, match=r"components\[0\]\.id: index 7 is not in "
                                            r"symbols\.component_ids \(1 entries\)"):
            verify_greentic_pack(seal_greentic_entries(entries), "greentic-current",
                                 GreenticTrust())

    def test_a_truncated_sbom_is_refused_naming_it(self, runner: CliRunner,
                                                   tmp_path: Path) -> None:
        """sbom.cbor cut short."""
        original = echo_file("dist/echo-pack.gtpack").read_bytes()
        tampered = rezip(original, lambda e: e.update({"sbom.cbor": e["sbom.cbor"][:50]}))
        assert "sbom.cbor: truncated CBOR" in run(runner, "verify", save(tmp_path, tampered),
                                                  code=1)


    @pytest.mark.parametrize("archive", [
        lambda: echo_file("dist/echo-pack.gtpack"),
        lambda: greentic_file(RUNNER, "examples/packs/demo.gtpack")], ids=["current", "legacy"])
    def test_corrupted_bytes_are_refused_never_a_traceback(self,
                                                           archive: Callable[[], Path]) -> None:
        """Random bytes changed in the archive, or in a manifest under a re-made SBOM: every
        outcome is a verified pack or a GreenticError, nothing else escapes."""
        data = archive().read_bytes()
        entries = read_entries(data)
        rng = random.Random(7)
        for attempt in range(150):
            if attempt % 2:
                candidate = bytearray(data)
                for _ in range(rng.randint(1, 4)):
                    candidate[rng.randrange(len(candidate))] = rng.randrange(256)
                corrupted = bytes(candidate)
            else:
                manifest = bytearray(entries["manifest.cbor"])
                manifest[rng.randrange(len(manifest))] = rng.randrange(256)
                corrupted = seal_greentic_entries({**entries, "manifest.cbor": bytes(manifest)})
            pack_format = detect_format(corrupted)
            if pack_format == "greentic-py":
                continue
            try:
                verify_greentic_pack(corrupted, pack_format, GreenticTrust())
            except GreenticError:
                pass


class TestWrite:
    def test_the_echo_pack_written_from_its_sources_is_greentics_own_build(self) -> None:
        """pack.yaml's fields, the flow, the component (wasm + manifest JSON), the root files:
        the same bytes `greentic-pack build` wrote to dist/echo-pack.gtpack."""
        assert write_echo() == echo_file("dist/echo-pack.gtpack").read_bytes()

    def test_entry_list_and_decoded_manifest_match_greentics(self) -> None:
        """Entry by entry, in order; the manifest with its symbols resolved, field by field."""
        ours = read_entries(write_echo())
        theirs = read_entries(echo_file("dist/echo-pack.gtpack").read_bytes())
        assert list(ours) == list(theirs)
        decoded = [resolve_symbols(decode_cbor(e["manifest.cbor"], "m")) for e in (ours, theirs)]
        assert decoded[0] == decoded[1]
        assert decoded[0]["flows"][0]["flow"]["nodes"]["echo"]["component"]["id"] == \
            ECHO_COMPONENT
        assert decode_cbor(ours["sbom.cbor"], "s") == decode_cbor(theirs["sbom.cbor"], "s")

    def test_our_reader_verifies_what_we_wrote(self, runner: CliRunner, tmp_path: Path) -> None:
        """Written, then verified through the CLI like any Greentic archive."""
        written = save(tmp_path, write_echo(dev=True))
        assert detect_format(written.read_bytes()) == "greentic-current"
        shown = run(runner, "verify", written)
        assert "verified: echo-pack 0.1.0 (Greentic (current layout), 10 entries)" in shown
        entries = read_entries(written.read_bytes())
        assert ["flows/echo/flow.json", "flows/echo/flow.ygtc"] == list(entries)[1:3]
        manifest = decode_cbor(entries["manifest.cbor"], "m")
        assert manifest["extensions"]["greentic.pack-mode.v1"]["inline"] == {"mode": "dev"}

    def test_a_component_without_a_manifest_gets_packcs_minimal_one(self) -> None:
        """No manifest JSON: id, version, world and supports only, no capabilities."""
        data = write_greentic_pack(
            pack_id="tiny", version="1.0.0",
            flows=[GreenticFlowInput(id="main", source=(
                "id: main\ntype: messaging\nnodes:\n  hello:\n    acme.hello: {text: hi}\n"
                "    routing: reply\n"))],
            components=[GreenticComponentInput(id="acme.hello", version="1.0.0", wasm=b"\0asm",
                                               world="greentic:component/node@0.5.0",
                                               supports=["messaging"])])
        checked = verify_greentic_pack(data, "greentic-current", GreenticTrust())
        manifest = checked.pack.current
        assert manifest is not None and manifest.capabilities == []
        assert manifest.flows[0].flow.nodes["hello"].routing == "reply"
        assert manifest.components[0].world == "greentic:component/node@0.5.0"

    def test_a_manifest_for_another_component_is_refused(self) -> None:
        """The manifest's id must be the component's, as packc insists."""
        with pytest.raises(PackError, match="its manifest's id is 'other'"):
            write_greentic_pack(pack_id="p", version="1.0.0", flows=[], components=[
                GreenticComponentInput(id="mine", version="1.0.0", wasm=b"", manifest={
                    "id": "other", "version": "1.0.0", "world": "w", "profiles": {},
                    "capabilities": {"wasi": {}, "host": {}}})])


class TestFlowCompile:
    def test_routes_compile_as_greentic_flow_compiles_them(self) -> None:
        """Next, branch on status with a default, reply, out: greentic-flow's IR."""
        flow = compile_flow(
            "id: f\ntype: messaging\nstart: a\nnodes:\n"
            "  a:\n    acme.ask: {q: 1}\n    routing: [{to: b}]\n"
            "  b:\n    acme.check: {}\n    routing:\n      - {status: ok, to: c}\n"
            "      - {to: a}\n"
            "  c:\n    template: {text: done}\n    routing: out\n")
        nodes = flow["nodes"]
        assert nodes["a"]["routing"] == {"next": {"node_id": "b"}}
        assert nodes["b"]["routing"] == {"branch": {"on_status": {"ok": "c"}, "default": "a"}}
        assert nodes["c"]["routing"] == "end" and nodes["c"]["component"] == {"id": "template"}
        assert nodes["a"]["component"] == {"id": "acme.ask"}
        assert flow["entrypoints"] == {"default": "a"} and flow["metadata"]["extra"] == {}

    def test_a_node_naming_no_component_needs_its_resolution(self) -> None:
        """A schema-v2 node whose operation is no component id needs the resolve summary."""
        source = "id: f\ntype: messaging\nnodes:\n  a:\n    run: {x: 1}\n"
        with pytest.raises(PackError, match="give its component id"):
            compile_flow(source)
        node = compile_flow(source, resolved={"a": "acme.runner"})["nodes"]["a"]
        assert node["component"] == {"id": "acme.runner", "operation": "run"}

    def test_yaml_1_1_literals_stay_strings_as_serde_yaml_reads_them(self) -> None:
        """`on`, dates and sexagesimal numbers are strings in YAML 1.2."""
        node = compile_flow("id: f\ntype: job\nnodes:\n  a:\n    acme.x: "
                            "{a: on, b: 2024-01-01, c: 1:20, d: 0o17}\n")["nodes"]["a"]
        assert node["input"]["mapping"] == {"a": "on", "b": "2024-01-01", "c": "1:20", "d": 15}


class TestChainSignatures:
    @pytest.fixture
    def signed(self, tmp_path: Path) -> dict[str, Path]:
        """The written echo pack signed by a leaf of a two-certificate chain."""
        root_key, leaf_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        root = certificate("Test Root", root_key)
        leaf = certificate("Test Signer", leaf_key, "Test Root", root_key)
        stranger_key = Ed25519PrivateKey.generate()
        files = {"root": tmp_path / "root.pem", "stranger": tmp_path / "stranger.pem",
                 "pack": tmp_path / "signed.gtpack", "broken": tmp_path / "broken.gtpack"}
        files["root"].write_bytes(pem(root))
        files["stranger"].write_bytes(pem(certificate("Stranger", stranger_key)))
        files["pack"].write_bytes(sign_greentic_pack(write_echo(), leaf_key, pem(leaf, root)))
        unlinked = pem(leaf, certificate("Test Root", stranger_key))
        files["broken"].write_bytes(sign_greentic_pack(write_echo(), leaf_key, unlinked))
        raw = leaf_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        files["leaf_key"] = Path("ed25519:" + base64.b64encode(raw).decode())
        return files

    def test_a_self_contained_chain_is_reported_as_such(self, runner: CliRunner,
                                                        signed: dict[str, Path]) -> None:
        """No --trust: the signature and the chain's links check out, and verify says the
        chain is anchored to nothing the user configured."""
        shown = run(runner, "verify", signed["pack"])
        assert "verifies with leaf CN=Test Signer" in shown
        assert "2 certificates, root CN=Test Root self-signed" in shown
        assert "anchored to nothing you configured" in shown

    def test_a_chain_anchored_by_a_trusted_root_is_trusted(self, runner: CliRunner,
                                                           signed: dict[str, Path]) -> None:
        """--trust root.pem: anchored, and verify names the anchor."""
        shown = run(runner, "verify", signed["pack"], "--trust", signed["root"])
        assert "trusted: anchored by the trusted certificate CN=Test Root" in shown

    def test_the_leafs_public_key_anchors_it_too(self, runner: CliRunner,
                                                 signed: dict[str, Path]) -> None:
        """--trust ed25519:<leaf key> (our key syntax) anchors the chain by its leaf."""
        shown = run(runner, "verify", signed["pack"], "--trust", str(signed["leaf_key"]))
        assert "anchored by the trusted key ed25519:" in shown

    def test_a_chain_of_another_root_is_refused_or_flagged_under_dev(
            self, runner: CliRunner, signed: dict[str, Path]) -> None:
        """Trusting a stranger: strict refuses naming pack.sig; dev accepts, loudly."""
        refused = run(runner, "verify", signed["pack"], "--trust", signed["stranger"], code=1)
        assert "signatures/pack.sig:" in refused and "policy strict" in refused
        shown = run(runner, "verify", signed["pack"], "--trust", signed["stranger"],
                    "--policy", "dev")
        assert "NOT anchored by anything you trust (accepted: policy dev)" in shown

    def test_a_chain_that_does_not_link_is_refused_naming_chain_pem(
            self, runner: CliRunner, signed: dict[str, Path]) -> None:
        """A root that did not issue the leaf, under the same name."""
        refused = run(runner, "verify", signed["broken"], code=1)
        assert "signatures/chain.pem: certificate 0 (CN=Test Signer) is not issued by " \
               "certificate 1" in refused

    def test_an_sbom_remade_after_signing_is_refused_naming_pack_sig(
            self, runner: CliRunner, signed: dict[str, Path], tmp_path: Path) -> None:
        """Digests made to match again, but the signed digest no longer does."""
        entries = read_entries(signed["pack"].read_bytes())
        entries["assets/extra.txt"] = b"added after signing"
        resealed = save(tmp_path, seal_greentic_entries(entries), "resealed.gtpack")
        refused = run(runner, "verify", resealed, code=1)
        assert "signatures/pack.sig: signed digest" in refused

    def test_an_unsigned_pack_is_refused_when_trust_is_configured(
            self, runner: CliRunner, signed: dict[str, Path], tmp_path: Path) -> None:
        """Unsigned verifies (and says so) until the user asks for a trusted signer."""
        unsigned = save(tmp_path, write_echo(), "unsigned.gtpack")
        assert "signature  unsigned" in run(runner, "verify", unsigned)
        refused = run(runner, "verify", unsigned, "--trust", signed["root"], code=1)
        assert "signatures/pack.sig: unsigned pack" in refused


class TestManifestSignatures:
    def test_a_packc_manifest_signature_verifies_with_the_given_key(
            self, runner: CliRunner, tmp_path: Path) -> None:
        """packc sign: Ed25519 over the manifest without signatures, stored in it."""
        key = Ed25519PrivateKey.generate()
        entries = read_entries(write_echo())
        unsigned = entries["manifest.cbor"]
        raw = decode_cbor(unsigned, "manifest.cbor")
        raw["signatures"]["signatures"] = [{
            "key_id": "default", "algorithm": "ed25519",
            "signature": base64.b64encode(key.sign(unsigned)).decode()}]
        entries["manifest.cbor"] = encode_cbor(raw)
        assert unsigned_manifest_bytes(entries["manifest.cbor"]) == unsigned
        signed = save(tmp_path, seal_greentic_entries(entries))
        public = tmp_path / "key.pem"
        public.write_bytes(key.public_key().public_bytes(Encoding.PEM,
                                                         PublicFormat.SubjectPublicKeyInfo))
        shown = run(runner, "verify", signed, "--trust", public)
        assert "key id default verifies; trusted" in shown
        assert "NOT verified" in run(runner, "verify", signed)
        stranger = "ed25519:" + base64.b64encode(bytes(32 * [7])).decode()
        refused = run(runner, "verify", signed, "--trust", stranger, code=1)
        assert "manifest.cbor:" in refused and "none verifies" in refused


class TestOurFormat:
    def test_our_own_archives_are_still_told_ours(self, runner: CliRunner,
                                                  tmp_path: Path) -> None:
        """greentic-py's archives go to our reader, unchanged but for the format line."""
        run(runner, "new", "demo")
        run(runner, "build", "demo", "-o", "demo.gtpack")
        assert detect_format((tmp_path / "demo.gtpack").read_bytes()) == "greentic-py"
        shown = run(runner, "inspect", "demo.gtpack")
        assert shown.startswith("format     greentic-py\npack       demo 0.1.0")
        assert "unsigned pack" in run(runner, "verify", "demo.gtpack", code=1)

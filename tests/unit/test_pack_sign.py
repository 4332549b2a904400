"""Ed25519 keys, signing and the trust policy."""

import base64
import stat
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

from greentic.errors import PackError, PackSignatureError
from greentic.pack.archive import build_pack, read_pack, sign_pack
from greentic.pack.keys import (
    format_public_key,
    parse_public_key,
    parse_trusted_keys,
    read_signing_key,
    write_keypair,
)
from greentic.pack.sign import SIGNATURE_ENTRY, Trust
from tests.unit.pack_fixtures import KEY, OTHER_KEY, TRUST, rezip, write_source


@pytest.fixture
def unsigned(tmp_path: Path) -> bytes:
    return build_pack(write_source(tmp_path / "shop"))


class TestKeys:
    def test_keygen_writes_a_0600_private_key_and_an_ed25519_public_key(
            self, tmp_path: Path) -> None:
        private, public, key = write_keypair(tmp_path / "release")
        assert (private.name, public.name) == ("release.key", "release.pub")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        text = public.read_text().strip()
        assert text.startswith("ed25519:") and len(base64.b64decode(text[8:])) == 32
        assert text == format_public_key(key.verify_key)
        assert bytes(read_signing_key(private)) == bytes(key)
        assert parse_public_key(text) == key.verify_key

    def test_keygen_never_overwrites_a_private_key(self, tmp_path: Path) -> None:
        private, _, _ = write_keypair(tmp_path / "k")
        before = private.read_bytes()
        with pytest.raises(PackError, match=r"exists; refusing to overwrite"):
            write_keypair(tmp_path / "k")
        assert private.read_bytes() == before

    def test_a_private_key_others_can_read_is_refused(self, tmp_path: Path) -> None:
        private, _, _ = write_keypair(tmp_path / "k")
        private.chmod(0o644)
        with pytest.raises(PackError, match=r"readable by others .*chmod 600"):
            read_signing_key(private)

    @pytest.mark.parametrize("text", ["rsa:AAAA", "ed25519:!!!", "ed25519:AAAA"])
    def test_malformed_public_keys_are_refused(self, text: str) -> None:
        with pytest.raises(PackError, match=r"public key"):
            parse_public_key(text)

    def test_trusted_keys_parse_from_a_comma_separated_list(self) -> None:
        keys = [format_public_key(k.verify_key) for k in (KEY, OTHER_KEY)]
        assert parse_trusted_keys(f"{keys[0]}, {keys[1]}") == frozenset(keys)
        assert parse_trusted_keys("") == frozenset()


class TestSignAndVerify:
    def test_sign_verify_round_trip(self, unsigned: bytes) -> None:
        signed = sign_pack(unsigned, KEY)
        pack = read_pack(signed, trust=TRUST)
        assert pack.signed_by == format_public_key(KEY.verify_key)
        assert sign_pack(signed, KEY) == signed  # re-signing replaces, deterministically

    def test_an_unsigned_pack_is_refused_under_every_policy(self, unsigned: bytes) -> None:
        for policy in ("strict", "dev"):
            with pytest.raises(PackSignatureError, match=r"signatures/pack.sig: unsigned pack"):
                read_pack(unsigned, trust=Trust(keys=TRUST.keys, policy=policy))
        assert read_pack(unsigned, trust=None).signed_by is None  # inspect reads it

    def test_a_signature_by_an_untrusted_key_is_refused_under_strict(self,
                                                                     unsigned: bytes) -> None:
        signed = sign_pack(unsigned, OTHER_KEY)
        with pytest.raises(PackSignatureError, match=r"which is not a trusted key") as caught:
            read_pack(signed, trust=TRUST)
        assert caught.value.entry == SIGNATURE_ENTRY
        assert format_public_key(OTHER_KEY.verify_key) in str(caught.value)

    def test_the_dev_policy_accepts_an_untrusted_key_loudly(self, unsigned: bytes) -> None:
        signed = sign_pack(unsigned, OTHER_KEY)
        with capture_logs() as logs:
            pack = read_pack(signed, trust=Trust(policy="dev"))
        assert pack.signed_by == format_public_key(OTHER_KEY.verify_key)
        assert [e["log_level"] for e in logs if "DEV TRUST POLICY" in e["event"]] == ["warning"]

    def test_a_signature_claiming_a_trusted_key_does_not_verify(self, unsigned: bytes) -> None:
        signed = sign_pack(unsigned, OTHER_KEY)

        def claim(entries: dict[str, bytes]) -> None:
            signature = msgspec.json.decode(entries[SIGNATURE_ENTRY])
            signature["public_key"] = format_public_key(KEY.verify_key)
            entries[SIGNATURE_ENTRY] = msgspec.json.encode(signature)

        with pytest.raises(PackSignatureError, match=r"signature does not verify"):
            read_pack(rezip(signed, claim), trust=TRUST)

    def test_a_garbled_signature_file_is_refused(self, unsigned: bytes) -> None:
        signed = sign_pack(unsigned, KEY)
        with pytest.raises(PackSignatureError, match=r"pack.sig: unreadable signature"):
            read_pack(rezip(signed, lambda e: e.update({SIGNATURE_ENTRY: b"{}"})), trust=TRUST)

    def test_signing_refuses_a_pack_that_does_not_check_out(self, unsigned: bytes) -> None:
        tampered = rezip(unsigned, lambda e: e.update({"flows/welcome/flow.ygtc": b"x"}))
        with pytest.raises(PackError, match=r"flows/welcome/flow.ygtc: content does not match"):
            sign_pack(tampered, KEY)

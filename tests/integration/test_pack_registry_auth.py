"""Registries that want credentials. Bearer tokens (docker-registry's `auth: token`, as Docker
Hub, GHCR and Harbor do): the client answers the challenge by asking the token service named in
it, with the GREENTIC_OCI_USERNAME/_PASSWORD credentials; the token service is a small double
speaking the Docker token protocol, issuing JWTs signed by a certificate the registry trusts.
Basic (docker-registry's `auth: htpasswd`): the credentials go straight to the registry."""

import asyncio
import base64
import datetime
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import jwt
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from greentic.errors import PackError
from greentic.hosting.launcher import free_port, stop_processes
from greentic.pack.oci import OciOptions, RegistryClient
from greentic.types.oci import parse_reference
from tests.integration.registry import Registry, start_registry
from tests.integration.test_pack_registry import new_pack

SERVICE, ISSUER, USER, PASSWORD = "greentic-test", "greentic-test-issuer", "ci", "s3cret"


@dataclass
class TokenService:
    port: int
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    scopes: list[str]

    async def token(self, request: web.Request) -> web.Response:
        """The Docker token protocol: GET realm?service=…&scope=repository:NAME:ACTIONS."""
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"details": "wrong credentials"}, status=401)
        scope = request.query.get("scope", "")
        self.scopes.append(scope)
        kind, name, actions = scope.split(":")
        now = int(time.time())
        token = jwt.encode(
            {"iss": ISSUER, "sub": USER, "aud": request.query["service"], "iat": now,
             "nbf": now - 10, "exp": now + 300, "jti": secrets.token_hex(8),
             "access": [{"type": kind, "name": name, "actions": actions.split(",")}]},
            self.key, algorithm="ES256", headers={"x5c": [base64.b64encode(
                self.certificate.public_bytes(serialization.Encoding.DER)).decode()]})
        return web.json_response({"token": token, "expires_in": 300})


def certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


@pytest.fixture
async def token_service() -> AsyncIterator[TokenService]:
    key = ec.generate_private_key(ec.SECP256R1())
    service = TokenService(port=free_port(), key=key, certificate=certificate(key), scopes=[])
    app = web.Application()
    app.router.add_get("/token", service.token)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", service.port).start()
    yield service
    await runner.cleanup()


@pytest.fixture
def private_registry(tmp_path: Path, token_service: TokenService) -> Iterator[Registry]:
    bundle = tmp_path / "token-issuer.pem"
    bundle.write_bytes(token_service.certificate.public_bytes(serialization.Encoding.PEM))
    running = start_registry(tmp_path / "registry", auth=(
        f"auth:\n  token:\n    realm: http://127.0.0.1:{token_service.port}/token\n"
        f"    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {bundle}\n"))
    yield running
    stop_processes([running.process], timeout=10)


async def test_a_token_registry_is_pushed_to_and_pulled_from_with_credentials(
        private_registry: Registry, token_service: TokenService, tmp_path: Path) -> None:
    ref = parse_reference(private_registry.locator("private/shop", "1.2.3"))
    data = new_pack(tmp_path)
    async with RegistryClient() as anonymous:
        with pytest.raises(PackError) as caught:
            await anonymous.push(ref, data)
    assert str(caught.value).startswith(f"{ref}: token service http://127.0.0.1:")
    assert "refused (401)" in str(caught.value)

    options = OciOptions(username=USER, password=PASSWORD)
    async with RegistryClient(options) as client:
        pushed = await client.push(ref, data)
    async with RegistryClient(options) as client:
        pulled = await client.pull(ref, cache_dir=tmp_path / "cache")
    assert pulled.path.read_bytes() == data and pulled.layer_digest == pushed.layer_digest
    actions = [(scope.rsplit(":", 1)[0], set(scope.rsplit(":", 1)[1].split(",")))
               for scope in token_service.scopes]  # the registry orders actions as it likes
    assert ("repository:private/shop", {"pull", "push"}) in actions
    assert actions[-1] == ("repository:private/shop", {"pull"})


def test_a_basic_auth_registry_needs_the_credentials(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(USER.encode() + b":" + bcrypt.hashpw(PASSWORD.encode(),
                                                              bcrypt.gensalt(rounds=4)) + b"\n")
    registry = start_registry(tmp_path / "registry", auth=(
        f"auth:\n  htpasswd:\n    realm: greentic-test\n    path: {htpasswd}\n"))
    try:
        ref = parse_reference(registry.locator("basic/shop", "1.2.3"))
        data = new_pack(tmp_path)

        async def round_trip(options: OciOptions) -> bytes:
            async with RegistryClient(options) as client:
                await client.push(ref, data)
                return (await client.pull(ref, cache_dir=tmp_path / "cache")).path.read_bytes()

        with pytest.raises(PackError, match="wants a user name and password"):
            asyncio.run(round_trip(OciOptions()))
        with pytest.raises(PackError, match="HTTP 401"):
            asyncio.run(round_trip(OciOptions(username=USER, password="wrong")))
        assert asyncio.run(round_trip(OciOptions(username=USER, password=PASSWORD))) == data
    finally:
        stop_processes([registry.process], timeout=10)

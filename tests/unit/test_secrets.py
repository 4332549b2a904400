"""Secrets providers: each reads only the asking tenant's place, over the real wire format."""

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from kubernetes import client as k8s

from greentic.config.settings import load_settings
from greentic.errors import ConfigError
from greentic.secrets import (
    EnvSecretsProvider,
    FileSecretsProvider,
    KubernetesSecretsProvider,
    VaultSecretsProvider,
    secrets_from_settings,
)
from greentic.types import TenantCtx

ACME, GLOBEX = TenantCtx("prod", "acme", "support"), TenantCtx("prod", "globex", "sales")


async def serve(routes: list[web.RouteDef]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def kube_api() -> AsyncIterator[tuple[str, list[str]]]:
    """The Kubernetes API's Secret read: GET /api/v1/namespaces/{ns}/secrets/{name}."""
    requests: list[str] = []
    secrets = {("greentic", "greentic-acme"): {"api-key": base64.b64encode(b"sk-acme").decode()}}

    async def read(request: web.Request) -> web.Response:
        requests.append(request.path)
        key = (request.match_info["ns"], request.match_info["name"])
        if key not in secrets:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "code": 404,
                                      "reason": "NotFound", "status": "Failure"}, status=404)
        return web.json_response({"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
                                  "metadata": {"name": key[1], "namespace": key[0]},
                                  "data": secrets[key]})

    runner, url = await serve([web.get("/api/v1/namespaces/{ns}/secrets/{name}", read)])
    yield url, requests
    await runner.cleanup()


@pytest.fixture
async def vault() -> AsyncIterator[tuple[str, list[dict]]]:
    """Vault KV v2 reads: GET /v1/{mount}/data/{path} with X-Vault-Token."""
    seen: list[dict] = []

    async def read(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "token": request.headers.get("X-Vault-Token")})
        if request.headers.get("X-Vault-Token") != "s.test-token":
            return web.json_response({"errors": ["permission denied"]}, status=403)
        if request.match_info["path"] != "greentic/acme":
            return web.json_response({"errors": []}, status=404)
        return web.json_response({"request_id": "r1", "lease_id": "", "renewable": False,
                                  "data": {"data": {"api-key": "sk-vault-acme"},
                                           "metadata": {"version": 3}}})

    runner, url = await serve([web.get("/v1/secret/data/{path:.+}", read)])
    yield url, seen
    await runner.cleanup()


def test_environment_variables_are_per_tenant() -> None:
    provider = EnvSecretsProvider({"GREENTIC_SECRET__ACME__API_KEY": "sk-env"})
    assert provider.get(ACME, "api-key") == b"sk-env"
    assert provider.get(GLOBEX, "api-key") is None


def test_files_are_read_from_the_tenants_directory_only(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "api-key").write_bytes(b"sk-file")
    provider = FileSecretsProvider(tmp_path)
    assert provider.get(ACME, "api-key") == b"sk-file"
    assert provider.get(GLOBEX, "api-key") is None
    for escape in ("../acme/api-key", "..", "a/b"):
        with pytest.raises(ValueError, match="not a safe name"):
            provider.get(GLOBEX, escape)


async def test_kubernetes_secrets_come_from_the_tenants_secret(
        kube_api: tuple[str, list[str]]) -> None:
    url, requests = kube_api
    api = k8s.CoreV1Api(k8s.ApiClient(k8s.Configuration(host=url)))
    provider = KubernetesSecretsProvider("greentic", api=api)
    assert await asyncio.to_thread(provider.get, ACME, "api-key") == b"sk-acme"
    assert await asyncio.to_thread(provider.get, ACME, "other") is None
    assert await asyncio.to_thread(provider.get, GLOBEX, "api-key") is None
    assert requests == ["/api/v1/namespaces/greentic/secrets/greentic-acme",
                        "/api/v1/namespaces/greentic/secrets/greentic-globex"]  # cached


async def test_vault_kv2_secrets_come_from_the_tenants_path(
        vault: tuple[str, list[dict]]) -> None:
    url, seen = vault
    provider = VaultSecretsProvider(url, "s.test-token")
    assert await asyncio.to_thread(provider.get, ACME, "api-key") == b"sk-vault-acme"
    assert await asyncio.to_thread(provider.get, GLOBEX, "api-key") is None
    assert seen == [{"path": "/v1/secret/data/greentic/acme", "token": "s.test-token"},
                    {"path": "/v1/secret/data/greentic/globex", "token": "s.test-token"}]


def test_the_backend_is_chosen_by_settings_and_incomplete_ones_fail_at_start(
        tmp_path: Path) -> None:
    assert isinstance(secrets_from_settings(load_settings({})), EnvSecretsProvider)
    files = load_settings({"GREENTIC_SECRETS_BACKEND": "files",
                           "GREENTIC_SECRETS_DIR": str(tmp_path)})
    assert isinstance(secrets_from_settings(files), FileSecretsProvider)
    with pytest.raises(ConfigError, match="GREENTIC_SECRETS_DIR"):
        secrets_from_settings(load_settings({"GREENTIC_SECRETS_BACKEND": "files"}))
    with pytest.raises(ConfigError, match="GREENTIC_VAULT_ADDR"):
        secrets_from_settings(load_settings({"GREENTIC_SECRETS_BACKEND": "vault"}))
    with pytest.raises(ConfigError, match="GREENTIC_SECRETS_BACKEND"):
        load_settings({"GREENTIC_SECRETS_BACKEND": "aws"})

"""Where secrets come from. Every lookup names the tenant; a provider only ever looks in that
tenant's place (its variable prefix, directory, Kubernetes Secret or Vault path), so no
tenant can read another's secrets. Providers are synchronous: components call them from
their worker thread; async code calls them through a thread.

URIs in docs and manifests read `secrets://{env}/{tenant}/{team|_}/{category}/{name}`; the
providers here key by tenant and name (team and category scoping is not used yet).
"""

import base64
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from greentic.errors import ConfigError
from greentic.types.tenant import TenantCtx

if TYPE_CHECKING:
    from greentic.config.settings import Settings

CACHE_TTL_S = 60.0
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,253}")


class SecretsProvider(Protocol):
    def get(self, ctx: TenantCtx, name: str) -> bytes | None:
        """Secret `name` of `ctx`'s tenant, or None."""
        ...


def secret_variable(tenant: str, name: str) -> str:
    """`GREENTIC_SECRET__{TENANT}__{NAME}`: upper case, `-` and `.` become `_`.

    A tenant or name that would make `__` ambiguous (`__` inside, `_` at either end) is
    refused: tenant `a` + name `b__c` and tenant `a__b` + name `c` would share a variable."""
    def norm(kind: str, value: str) -> str:
        normal = re.sub(r"[^A-Z0-9_]", "_", value.upper())
        if not normal or "__" in normal or normal.startswith("_") or normal.endswith("_"):
            raise ConfigError(f"secret {kind} {value!r} cannot be an environment variable "
                              "part: no '__', and no '_', '-' or '.' at either end")
        return normal
    return f"GREENTIC_SECRET__{norm('tenant', tenant)}__{norm('name', name)}"


class EnvSecretsProvider:
    """Secrets from environment variables, one per tenant and name."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, ctx: TenantCtx, name: str) -> bytes | None:
        value = self._environ.get(secret_variable(ctx.tenant, name))
        return None if value is None else value.encode()


def _safe(kind: str, value: str) -> str:
    if not _TOKEN.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"secret {kind} {value!r} is not a safe name")
    return value


class FileSecretsProvider:
    """Files `{root}/{tenant}/{name}` — Kubernetes Secrets mounted one directory per tenant."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get(self, ctx: TenantCtx, name: str) -> bytes | None:
        path = self.root / _safe("tenant", ctx.tenant) / _safe("name", name)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None


class _Cached:
    """A per-tenant document fetched at most every CACHE_TTL_S seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, tuple[float, dict[str, bytes]]] = {}

    def lookup(self, tenant: str, fetch: Any) -> dict[str, bytes]:
        with self._lock:
            cached = self._documents.get(tenant)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
        document = fetch(tenant)
        with self._lock:
            self._documents[tenant] = (time.monotonic() + CACHE_TTL_S, document)
        return document


class KubernetesSecretsProvider:
    """Secret `greentic-{tenant}` in one namespace (the `kubernetes` client); its keys are the
    tenant's secret names."""

    def __init__(self, namespace: str, api: Any = None) -> None:
        from kubernetes import client, config

        if api is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api = client.CoreV1Api()
        self.api = api
        self.namespace = namespace
        self._cache = _Cached()

    def _fetch(self, tenant: str) -> dict[str, bytes]:
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self.api.read_namespaced_secret(f"greentic-{_safe('tenant', tenant)}",
                                                     self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}

    def get(self, ctx: TenantCtx, name: str) -> bytes | None:
        return self._cache.lookup(ctx.tenant, self._fetch).get(name)


class VaultSecretsProvider:
    """HashiCorp Vault KV v2: secret `{mount}/data/{prefix}/{tenant}`; its keys are the
    tenant's secret names."""

    def __init__(self, address: str, token: str, mount: str = "secret",
                 prefix: str = "greentic") -> None:
        self.address = address.rstrip("/")
        self.token = token
        self.mount = mount
        self.prefix = prefix
        self._cache = _Cached()

    def _fetch(self, tenant: str) -> dict[str, bytes]:
        url = f"{self.address}/v1/{self.mount}/data/{self.prefix}/{_safe('tenant', tenant)}"
        request = urllib.request.Request(url, headers={"X-Vault-Token": self.token})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return {}
            raise
        data = (body.get("data") or {}).get("data") or {}
        return {key: str(value).encode() for key, value in data.items()}

    def get(self, ctx: TenantCtx, name: str) -> bytes | None:
        return self._cache.lookup(ctx.tenant, self._fetch).get(name)


def secrets_from_settings(settings: "Settings") -> SecretsProvider:
    """The provider GREENTIC_SECRETS_BACKEND names; a missing detail fails at start."""
    backend = settings.secrets_backend
    if backend == "env":
        return EnvSecretsProvider()
    if backend == "files":
        if not settings.secrets_dir:
            raise ConfigError("GREENTIC_SECRETS_BACKEND=files needs GREENTIC_SECRETS_DIR")
        return FileSecretsProvider(settings.secrets_dir)
    if backend == "kubernetes":
        return KubernetesSecretsProvider(settings.secrets_namespace or
                                         settings.lease_namespace or "default")
    token = settings.vault_token or os.environ.get("VAULT_TOKEN", "")
    if settings.vault_token_file:
        token = Path(settings.vault_token_file).read_text().strip()
    if not settings.vault_addr or not token:
        raise ConfigError("GREENTIC_SECRETS_BACKEND=vault needs GREENTIC_VAULT_ADDR and "
                          "GREENTIC_VAULT_TOKEN (or GREENTIC_VAULT_TOKEN_FILE)")
    return VaultSecretsProvider(settings.vault_addr, token, settings.vault_mount)

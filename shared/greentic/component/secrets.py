"""Secrets for components: a provider protocol and its environment-variable implementation.

Files, Kubernetes and Vault providers come with the Kubernetes issue.
"""

import os
import re
from collections.abc import Mapping
from typing import Protocol

from greentic.types.tenant import TenantCtx


class SecretsProvider(Protocol):
    def get(self, ctx: TenantCtx, name: str) -> bytes | None:
        """Secret `name` of `ctx`'s tenant, or None."""
        ...


def secret_variable(tenant: str, name: str) -> str:
    """`GREENTIC_SECRET__{TENANT}__{NAME}`: upper case, `-` and `.` become `_`."""
    def norm(value: str) -> str:
        return re.sub(r"[^A-Z0-9_]", "_", value.upper())
    return f"GREENTIC_SECRET__{norm(tenant)}__{norm(name)}"


class EnvSecretsProvider:
    """Secrets from environment variables, one per tenant and name."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, ctx: TenantCtx, name: str) -> bytes | None:
        value = self._environ.get(secret_variable(ctx.tenant, name))
        return None if value is None else value.encode()

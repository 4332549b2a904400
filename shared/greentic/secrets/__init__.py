"""Secrets: one protocol, four sources (environment, mounted files, the Kubernetes API,
HashiCorp Vault KV v2), always scoped to one tenant."""

from greentic.secrets.providers import (
    EnvSecretsProvider,
    FileSecretsProvider,
    KubernetesSecretsProvider,
    SecretsProvider,
    VaultSecretsProvider,
    secret_variable,
    secrets_from_settings,
)

__all__ = ["EnvSecretsProvider", "FileSecretsProvider", "KubernetesSecretsProvider",
           "SecretsProvider", "VaultSecretsProvider", "secret_variable", "secrets_from_settings"]

"""The WebAssembly component host: one engine per process, compile cache, limits, isolation."""

from greentic.component.engine import ComponentEngine
from greentic.component.host import ComponentHost, LoadedComponent
from greentic.component.secrets import EnvSecretsProvider, SecretsProvider

__all__ = ["ComponentEngine", "ComponentHost", "EnvSecretsProvider", "LoadedComponent",
           "SecretsProvider"]

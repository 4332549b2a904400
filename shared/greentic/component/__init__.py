"""The WebAssembly component host: one engine per process, compile cache, limits, isolation."""

from greentic.component.engine import ComponentEngine
from greentic.component.host import ComponentHost, LoadedComponent

__all__ = ["ComponentEngine", "ComponentHost", "LoadedComponent"]

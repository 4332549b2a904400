"""Tenant-scoped key/value state for flows and components (`state.get/set`, state imports)."""

from greentic.state.store import MemoryStateStore, StateKey, StateScope, StateStore

__all__ = ["MemoryStateStore", "StateKey", "StateScope", "StateStore"]

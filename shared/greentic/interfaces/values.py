"""Python values for WIT records: wasmtime-py reads fields by their WIT names, hyphens included."""

from typing import Any

from wasmtime.component import Record, Variant
from wasmtime.component import _types as component_types


def record(**fields: Any) -> Record:
    """A WIT record; keyword `tenant_id` becomes field `tenant-id`."""
    value = Record()
    for name, field in fields.items():
        setattr(value, name.replace("_", "-"), field)
    return value


def field(value: Any, name: str) -> Any:
    """Field `name` (WIT spelling, e.g. `output-cbor`) of a record wasmtime returned."""
    return getattr(value, name)


def _honour_explicit_variants() -> None:
    """Let a host function answer `Variant(tag, payload)` for any result or variant.

    wasmtime-py 50 lowers an "untagged" variant (one whose cases have distinct Python types) by
    trying each case's types in order; a case of type `option<T>` accepts every object, so
    `result<option<list<u8>>, secrets-error>` (Greentic's `secrets-store.get`) could never
    answer its error. A `Variant` whose tag names a case now picks that case, unless a case
    itself holds tagged variants (then the Variant may be its payload and nothing changes)."""
    like = component_types.VariantLikeType
    original = like._lower
    if getattr(original, "explicit_variants", False):
        return

    def lower(self: Any, store: Any, val: Any) -> Any:
        if isinstance(val, Variant) and not self._tagged():
            cases = self._cases()
            classes: set[type] = set()
            for _name, case in cases:
                if case is not None:
                    case.add_classes(classes)
            if Variant not in classes and val.tag in {name for name, _ in cases}:
                case = dict(cases)[val.tag]
                if case is None:
                    return (val.tag, None)
                raw = component_types.ffi.wasmtime_component_val_t()
                case.convert_to_c(store, val.payload, component_types.ctypes.pointer(raw))
                return (val.tag, component_types.ffi.wasmtime_component_val_new(
                    component_types.byref(raw)))
        return original(self, store, val)

    lower.explicit_variants = True  # type: ignore[attr-defined]
    like._lower = lower


_honour_explicit_variants()

"""Python values for WIT records: wasmtime-py reads fields by their WIT names, hyphens included."""

import contextlib
import threading
from collections.abc import Iterator
from ctypes import byref
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import Record, Variant
from wasmtime.component import _types as component_types

VALUE_BYTES = 64
"""What one list element or record field counts against an output budget: converting a value
to Python costs microseconds each (~90 µs for a record of ten fields), so a list of many empty
records is as dear as a long string."""


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


class OutputTooLarge(Exception):
    """A guest's result is bigger than the output budget of its call."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the result is over {limit} bytes")
        self.limit = limit


class _Budget(threading.local):
    limit: int | None = None
    remaining: int = 0


_budget = _Budget()


@contextlib.contextmanager
def output_budget(limit: int) -> Iterator[None]:
    """Results lifted from a guest in this thread meanwhile may hold at most `limit` bytes
    (strings by length, each list element and record field as VALUE_BYTES); a bigger one raises
    OutputTooLarge before the rest of it is converted, so a guest cannot keep the host busy
    converting (or holding) far more than its limit."""
    previous = _budget.limit, _budget.remaining
    _budget.limit, _budget.remaining = limit, limit
    try:
        yield
    finally:
        _budget.limit, _budget.remaining = previous


def _charge(size: int) -> bool:
    if _budget.limit is None:
        return True
    _budget.remaining -= size
    return _budget.remaining >= 0


def _install_output_budget() -> None:
    """Check the budget as lists and strings are lifted. Over it, the value is freed and marked
    converted (a bool), so the containers around it free the rest without a double free."""
    list_type, record_type = component_types.ListType, component_types.RecordType
    string_type = component_types.String
    if getattr(list_type.convert_from_c, "budgeted", False):
        return
    lift_list, lift_record = list_type.convert_from_c, record_type.convert_from_c
    lift_string = string_type.convert_from_c

    def convert_list(self: Any, c: Any) -> Any:
        if not _charge(c.of.list.size * VALUE_BYTES):
            ffi.wasmtime_component_vallist_delete(byref(c.of.list))
            _mark_converted(c)
            raise OutputTooLarge(_budget.limit or 0)
        return lift_list(self, c)

    def convert_record(self: Any, c: Any) -> Any:
        if not _charge(c.of.record.size * VALUE_BYTES):
            ffi.wasmtime_component_valrecord_delete(byref(c.of.record))
            _mark_converted(c)
            raise OutputTooLarge(_budget.limit or 0)
        return lift_record(self, c)

    def convert_string(self: Any, c: Any) -> Any:
        if not _charge(c.of.string.size):
            ffi.wasm_byte_vec_delete(byref(c.of.string))
            _mark_converted(c)
            raise OutputTooLarge(_budget.limit or 0)
        return lift_string(self, c)

    convert_list.budgeted = True  # type: ignore[attr-defined]
    list_type.convert_from_c = convert_list
    record_type.convert_from_c = convert_record
    string_type.convert_from_c = convert_string


def _mark_converted(c: Any) -> None:
    c.kind = ffi.WASMTIME_COMPONENT_BOOL
    c.of.boolean = False


_install_output_budget()

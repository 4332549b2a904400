"""Python values for WIT records: wasmtime-py reads fields by their WIT names, hyphens included."""

from typing import Any

from wasmtime.component import Record


def record(**fields: Any) -> Record:
    """A WIT record; keyword `tenant_id` becomes field `tenant-id`."""
    value = Record()
    for name, field in fields.items():
        setattr(value, name.replace("_", "-"), field)
    return value


def field(value: Any, name: str) -> Any:
    """Field `name` (WIT spelling, e.g. `output-cbor`) of a record wasmtime returned."""
    return getattr(value, name)

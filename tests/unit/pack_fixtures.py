"""A small pack source, keys and archive surgery shared by the pack tests."""

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from nacl.signing import SigningKey

from greentic.pack.archive import SBOM_ENTRY, make_sbom, read_zip, write_zip
from greentic.pack.keys import format_public_key
from greentic.pack.sign import SIGNATURE_ENTRY, Trust, make_signature

WELCOME = """\
id: welcome
type: messaging
schema_version: 2
start: answer
nodes:
  answer:
    templating.handlebars:
      text: "welcome: {{in.input.text}}"
    routing: reply
"""

LOOKUP = """\
id: lookup
type: messaging
schema_version: 2
start: call
nodes:
  call:
    component.exec: { component: orders, operation: lookup, input: "{{in.input.text}}" }
    routing: reply
"""


def write_source(directory: Path, *, with_component: bool = True) -> Path:
    """pack.yaml, two flows (one calling component `orders`), a component and an asset."""
    (directory / "flows").mkdir(parents=True)
    (directory / "assets" / "img").mkdir(parents=True)
    (directory / "flows" / "welcome.ygtc").write_text(WELCOME)
    flows = "  - {id: welcome, file: flows/welcome.ygtc, entrypoints: [default], tags: [demo]}\n"
    components = ""
    if with_component:
        (directory / "flows" / "lookup.ygtc").write_text(LOOKUP)
        (directory / "orders.wasm").write_bytes(b"\0asm\x0d\0\x01\0" + bytes(range(256)))
        flows += "  - {id: lookup, file: flows/lookup.ygtc}\n"
        components = ("components:\n  - id: orders\n    version: 0.2.0\n    world: node\n"
                      "    wasm: orders.wasm\n    operations: [lookup]\n"
                      "    capabilities: {host: [state]}\n")
    (directory / "assets" / "readme.txt").write_text("hello\n")
    (directory / "assets" / "img" / "logo.svg").write_text("<svg/>\n")
    (directory / "pack.yaml").write_text(
        "pack_id: shop\nversion: 1.2.3\nkind: application\npublisher: acme\n"
        f"flows:\n{flows}{components}")
    return directory


KEY = SigningKey(b"\x01" * 32)
OTHER_KEY = SigningKey(b"\x02" * 32)
TRUST = Trust(keys=frozenset({format_public_key(KEY.verify_key)}))


def rezip(data: bytes, change: Callable[[dict[str, bytes]], None], *, sbom: bool = False,
          sign: SigningKey | None = None) -> bytes:
    """`data` with `change` applied to its entries; optionally a fresh SBOM and signature
    (what an attacker without the key could and could not redo)."""
    entries = read_zip(data)
    change(entries)
    if sbom:
        entries[SBOM_ENTRY] = make_sbom("shop", "1.2.3", entries)
    if sign is not None:
        entries.pop(SIGNATURE_ENTRY, None)
        entries[SIGNATURE_ENTRY] = make_signature(entries, sign)
    return write_zip(entries)


def raw_zip(items: list[tuple[zipfile.ZipInfo | str, bytes]],
            compression: int = zipfile.ZIP_STORED) -> bytes:
    """A ZIP written as given: any names, modes, duplicates."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for info, content in items:
            archive.writestr(info, content)
    return buffer.getvalue()

"""Greentic's own `.gtpack` format (both generations): detect, read, verify, write.

Followed from Greentic's Rust source: greentic-pack (`crates/greentic-pack/src/reader.rs`,
`builder.rs`; `crates/packc/src/build.rs`, `cli/sign.rs`) and greentic-types v0.4.55
(`src/cbor/mod.rs`, `src/pack_manifest.rs`, `src/component.rs`, `src/flow.rs`). Each module
names the files it follows.
"""

from greentic.pack.greentic_format.detect import FORMAT_NAMES, PackFormat, detect_format
from greentic.pack.greentic_format.read import (
    GreenticPack,
    GreenticVerification,
    PackSummary,
    read_greentic_pack,
    verify_greentic_pack,
)
from greentic.pack.greentic_format.signature import (
    GreenticTrust,
    SignatureReport,
    parse_greentic_trust,
)
from greentic.pack.greentic_format.write import (
    GreenticComponentInput,
    GreenticFlowInput,
    sign_greentic_pack,
    write_greentic_pack,
)

__all__ = [
    "FORMAT_NAMES",
    "GreenticComponentInput",
    "GreenticFlowInput",
    "GreenticPack",
    "GreenticTrust",
    "GreenticVerification",
    "PackFormat",
    "PackSummary",
    "SignatureReport",
    "detect_format",
    "parse_greentic_trust",
    "read_greentic_pack",
    "sign_greentic_pack",
    "verify_greentic_pack",
    "write_greentic_pack",
]

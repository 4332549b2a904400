"""A Greentic pack's verdict: an archive read and verified as `greentic pack verify` does, a
`pack.yaml` source read and its flows resolved against its components as `pack build` does."""

from pathlib import Path

from greentic.compat.verdict import Verdict
from greentic.errors import GreenticError
from greentic.flow.loader import load_flow
from greentic.pack.archive import pack_operations, read_pack
from greentic.pack.devsource import read_dev_pack
from greentic.pack.greentic_format import (
    FORMAT_NAMES,
    detect_format,
    parse_greentic_trust,
    verify_greentic_pack,
)


def _archive(path: Path) -> str:
    data = path.read_bytes()
    pack_format = detect_format(data)
    if pack_format == "greentic-py":
        archive = read_pack(data, trust=None, name=path.name)
        return f"greentic-py archive, {len(archive.manifest.flows)} flows"
    checked = verify_greentic_pack(data, pack_format, parse_greentic_trust([], "dev"),
                                   name=path.name)
    summary = checked.pack.summary()
    return (f"{FORMAT_NAMES[pack_format]}, {len(summary.components)} components, "
            f"{len(summary.flows)} flows, {checked.signature.kind}: digests verified")


def _source(path: Path) -> str:
    manifest, flows = read_dev_pack(path.parent)
    ids = {flow.id for flow in flows}
    offered = pack_operations(manifest.components)
    for flow in flows:
        load_flow(flow.source, flow.file, pack_flows=ids, bindings=flow.bindings,
                  components=offered)
    return f"pack source, {len(manifest.components)} components, {len(flows)} flows"


def judge_pack(path: Path, root: Path) -> Verdict:
    """Accepted when the archive verifies / the source builds; refused with the first error."""
    shown = str(path.relative_to(root))
    try:
        reason = _source(path) if path.name == "pack.yaml" else _archive(path)
    except GreenticError as exc:
        return Verdict(shown, "packs", False, str(exc))
    except (OSError, ValueError) as exc:
        return Verdict(shown, "packs", False, f"{type(exc).__name__}: {exc}")
    return Verdict(shown, "packs", True, reason)

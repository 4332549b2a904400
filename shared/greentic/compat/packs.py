"""A Greentic pack's verdict: an archive read and verified as `greentic pack verify` does, a
`pack.yaml` source read and its flows resolved against its components as `pack build` does."""

from pathlib import Path

from greentic.compat.components import component_verdict
from greentic.compat.verdict import Verdict
from greentic.errors import GreenticError, PackError
from greentic.flow.loader import load_flow
from greentic.pack.archive import pack_operations, read_pack
from greentic.pack.devsource import read_dev_pack
from greentic.pack.greentic_format import (
    FORMAT_NAMES,
    detect_format,
    parse_greentic_trust,
    verify_greentic_pack,
)


def _components_hosted(components: list[tuple[str, bytes]]) -> None:
    """Raises naming the first component this platform cannot host."""
    for name, data in components:
        accepted, reason = component_verdict(data, name)
        if not accepted:
            raise PackError(f"component {name!r} is not hosted: {reason}")


def _archive(path: Path) -> str:
    data = path.read_bytes()
    pack_format = detect_format(data)
    if pack_format == "greentic-py":
        archive = read_pack(data, trust=None, name=path.name)
        _components_hosted([(c.id, archive.entries[c.file]) for c in archive.manifest.components])
        return (f"greentic-py archive, {len(archive.manifest.components)} components (hosted), "
                f"{len(archive.manifest.flows)} flows")
    checked = verify_greentic_pack(data, pack_format, parse_greentic_trust([], "dev"),
                                   name=path.name)
    _components_hosted([(name.removeprefix("components/").removesuffix(".wasm"), content)
                        for name, content in checked.pack.entries.items()
                        if name.startswith("components/") and name.endswith(".wasm")])
    summary = checked.pack.summary()
    return (f"{FORMAT_NAMES[pack_format]}, {len(summary.components)} components (hosted), "
            f"{len(summary.flows)} flows, {checked.signature.kind}: digests verified")


def _source(path: Path) -> str:
    manifest, flows = read_dev_pack(path.parent)
    _components_hosted([(c.id, (path.parent / c.wasm).read_bytes())
                        for c in manifest.components])
    ids = {flow.id for flow in flows}
    offered = pack_operations(manifest.components)
    for flow in flows:
        load_flow(flow.source, flow.file, pack_flows=ids, bindings=flow.bindings,
                  components=offered)
    return f"pack source, {len(manifest.components)} components (hosted), {len(flows)} flows"


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

"""A pack checked before anything of it is published: a `.gtpack` verified (signature by a
trusted key, every entry against the SBOM and manifest, the digest pin), a dev source directory
read unsigned, and every flow loaded as executors will load it."""

import hashlib
from pathlib import Path
from typing import NamedTuple

import msgspec
import structlog

from greentic.config.settings import Settings
from greentic.errors import ConfigError, PackError
from greentic.flow.loader import load_flow
from greentic.pack.archive import PackArchive, PackLimits, pack_operations, read_pack_file
from greentic.pack.devsource import PackFlowSource, dev_component_files, read_dev_pack
from greentic.pack.index import pack_revision
from greentic.pack.keys import parse_trusted_keys
from greentic.pack.sign import Trust
from greentic.types.component import ComponentManifest

log = structlog.get_logger(__name__)


class PackContents(NamedTuple):
    """A pack read and checked: what gets published and what a deploy reports."""

    version: str
    flows: list[PackFlowSource]
    components: list[tuple[ComponentManifest, str, int, Path | bytes]]
    """(manifest, sha256, size, the file or the bytes)."""
    flow_versions: dict[str, str]
    revision: str


class PackVerifier:
    """Reads packs with the configured trust; a `.gtpack` is verified again only when its file
    changed, a component file hashed again only when it changed."""

    def __init__(self, settings: Settings, limits: PackLimits) -> None:
        try:
            self._trust = Trust(keys=parse_trusted_keys(settings.trusted_keys),
                                policy=settings.pack_policy)
        except PackError as exc:
            raise ConfigError(f"GREENTIC_TRUSTED_KEYS: {exc}") from None
        self._limits = limits
        # .gtpack path → (mtime, size, inode) and what verifying it gave: re-verified on change
        self._verified: dict[str, tuple[tuple[int, int, int], PackArchive | PackError]] = {}
        self._digests: dict[tuple[str, int, int], str] = {}  # (path, mtime, size) → sha256
        if settings.pack_policy == "dev":
            log.warning("DEV TRUST POLICY: .gtpack files signed by ANY key will be loaded "
                        "(GREENTIC_PACK_POLICY=dev); never use it in production")

    def verify(self, pack_id: str, pack_path: Path, digest: str = "") -> PackContents:
        """A pack source directory or `.gtpack`, verified and checked; raises GreenticError."""
        if digest and not pack_path.is_file():
            raise PackError(f"a digest pin needs a .gtpack file, and {pack_path} is not one",
                            entry="digest")
        if pack_path.is_file():
            pack_version, flows, components = self._signed_pack(pack_id, pack_path)
            # after verifying, which refuses an oversized file unread
            if digest and (actual := f"sha256:{self._digest(pack_path)[0]}") != digest:
                raise PackError(f"{pack_path} is {actual}, not the pinned {digest}",
                                entry="digest")
        else:
            manifest, flows = read_dev_pack(pack_path)
            pack_version = manifest.version
            components = [(component, *self._digest(path), path) for component, path
                          in dev_component_files(pack_path, manifest)]
        # refuse what executors could not run
        ids = {flow.id for flow in flows}
        offered = pack_operations(c for c, _, _, _ in components)
        loaded = {flow.id: load_flow(flow.source, flow.file, pack_flows=ids,
                                     bindings=flow.bindings, components=offered)
                  for flow in flows}
        versions = {flow_id: flow.version for flow_id, flow in loaded.items()}
        # what each flow calls by name, as resolved against this pack's components
        flows = [msgspec.structs.replace(flow, bindings=loaded[flow.id].bindings)
                 for flow in flows]
        revision = pack_revision(pack_id, pack_version, list(versions.items()),
                                 [(c.id, d, msgspec.json.encode(c)) for c, d, _, _ in components])
        return PackContents(pack_version, flows, components, versions, revision)

    def _signed_pack(self, pack_id: str, path: Path) -> tuple[
            str, list[PackFlowSource], list[tuple[ComponentManifest, str, int, bytes]]]:
        """A `.gtpack`'s version, flows and components, verified; raises PackError (cached
        until the file changes, so a large bad pack is not re-read every poll)."""
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._verified.get(str(path))
        if cached is None or cached[0] != key:
            try:
                result: PackArchive | PackError = read_pack_file(path, trust=self._trust,
                                                                 limits=self._limits)
            except PackError as exc:
                result = exc
            else:
                if result.manifest.pack_id != pack_id:
                    result = PackError(f"pack_id {result.manifest.pack_id!r} is not the bundle's "
                                       f"{pack_id!r}", entry="manifest.cbor:pack_id")
                else:
                    log.info("pack verified", pack=pack_id, version=result.manifest.version,
                             key=result.signed_by, file=str(path))
            cached = self._verified[str(path)] = (key, result)
        archive = cached[1]
        if isinstance(archive, PackError):  # a fresh error: the cached one's traceback stays put
            error = PackError(str(archive), entry=str(path))
            error.entry = archive.entry or str(path)  # the message names the file, entry the part
            raise error
        flows = [PackFlowSource(flow.id, f"{path}!{flow.file}", archive.flow_source(flow),
                                dict(flow.bindings)) for flow in archive.manifest.flows]
        components = [(c.runtime_manifest(), c.sha256, c.size, archive.entries[c.file])
                      for c in archive.manifest.components]
        return archive.manifest.version, flows, components

    def _digest(self, path: Path) -> tuple[str, int]:
        """sha256 and size of a component file, re-hashed only when the file changed."""
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._digests:
            self._digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._digests[key], stat.st_size

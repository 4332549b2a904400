"""Where a pack's bytes are: a local directory or `.gtpack` as is, or an `oci://` locator pulled
through the cache."""

import hashlib
from pathlib import Path

from greentic.errors import PackError
from greentic.pack.archive import DEFAULT_LIMITS, PackLimits
from greentic.pack.oci import OciOptions, Progress, RegistryClient
from greentic.types.oci import SCHEME, parse_reference


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


async def resolve_pack(locator: str, *, base_dir: str | Path, cache_dir: str | Path,
                       digest: str | None = None, limits: PackLimits = DEFAULT_LIMITS,
                       progress: Progress | None = None,
                       options: OciOptions | None = None) -> Path:
    """The local path of the pack `locator` names.

    A path (relative to `base_dir`) is returned as is: a source directory, or a `.gtpack`,
    which must hash to `digest` when one is given. `oci://…` is pulled into `cache_dir` (once
    per layer digest) and must be the `digest` pin when one is given. PackError otherwise."""
    if locator.startswith(SCHEME):
        ref = parse_reference(locator)
        async with RegistryClient(options) as client:
            pulled = await client.pull(ref, cache_dir=cache_dir, digest=digest, limits=limits,
                                       progress=progress)
        return pulled.path
    path = (Path(base_dir) / locator).resolve()
    if digest is not None:
        if not path.is_file():
            raise PackError(f"a digest pin needs a .gtpack file, and {path} is not one",
                            entry=locator)
        actual = file_digest(path)
        if actual != digest:
            raise PackError(f"pinned digest {digest} but the file hashes to {actual}",
                            entry=locator)
    return path

"""Where a pack's bytes are: a local directory or `.gtpack` as is, or an `oci://` locator pulled
through the cache; and where pack-loader reads each of the bundle's packs from (`PackSources`)."""

import hashlib
import time
from pathlib import Path

import structlog

from greentic.config.bundle import Bundle
from greentic.config.settings import Settings
from greentic.errors import PackError
from greentic.pack.archive import DEFAULT_LIMITS, PackLimits
from greentic.pack.deploy import Deployment
from greentic.pack.oci import OciOptions, Progress, ProgressLog, RegistryClient
from greentic.types.oci import SCHEME, parse_reference

log = structlog.get_logger(__name__)

PULL_RETRY_S = 5.0
"""A failed pull is tried again after this long (or GREENTIC_PACK_REFRESH_S, if shorter)."""


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


class PackSources:
    """Where each of the bundle's packs is read from: a deployment's locator, else the bundle's
    path or `oci://` reference. `oci` packs are pulled through the cache; a tag is asked for
    again every GREENTIC_PACK_REFRESH_S, a digest-pinned pack only once."""

    def __init__(self, settings: Settings, bundle: Bundle, limits: PackLimits) -> None:
        self.settings = settings
        self.bundle = bundle
        self.deployed: dict[str, Deployment] = {}  # pack → deployed in place of the bundle's
        self._limits = limits
        self._oci = OciOptions.from_settings(settings)
        # oci pack id → (when last asked, last good cached .gtpack or None, whether that
        # failed, the locator asked)
        self._pulled: dict[str, tuple[float, Path | None, bool, str]] = {}
        self.failures = 0

    def source(self, pack_id: str) -> tuple[str, str]:
        """Where pack `pack_id` comes from (a deployment's locator, else the bundle's path or
        `oci://` reference) and its digest pin ("" for none)."""
        deployment = self.deployed.get(pack_id)
        if deployment is not None:
            return deployment.locator, deployment.digest
        source = self.bundle.packs[pack_id]
        if source.oci is not None:
            return source.oci, source.digest or ""
        return str(self.bundle.pack_dir(pack_id)), ""

    def requested(self, pack_id: str, locator: str, digest: str) -> tuple[str, str]:
        """The locator and digest pin a deploy request names: its locator checked, else the
        pack's current source (its pin, unless the request gives one)."""
        if locator:
            return self._checked_locator(locator), digest
        current, pinned = self.source(pack_id)
        return current, digest or pinned

    def _checked_locator(self, locator: str) -> str:
        """A deploy locator checked: `oci://…` as given (validated), else a pack source
        directory or a `.gtpack`, relative to the bundle's directory unless absolute."""
        if locator.startswith("oci://"):
            parse_reference(locator)
            return locator
        path = Path(locator).expanduser()
        if not path.is_absolute():
            path = Path(self.bundle.base_dir) / path
        path = path.resolve()
        if not path.exists():
            raise PackError(f"{path} does not exist", entry="locator")
        return str(path)

    async def locate_all(self) -> dict[str, Path | None]:
        """Every pack's local path, pulled when due. A failed pull is logged and counted, and
        the last good path stays (None: none yet)."""
        paths: dict[str, Path | None] = {}
        for pack_id in self.bundle.packs:
            locator, digest = self.source(pack_id)
            try:
                paths[pack_id] = await self.locate(pack_id, locator, digest, force=False)
            except PackError as exc:
                self.failures += 1
                log.error("pack pull failed; keeping the last good version", pack=pack_id,
                          error=str(exc))
                paths[pack_id] = self._pulled[pack_id][1] if pack_id in self._pulled else None
        return paths

    async def locate(self, pack_id: str, locator: str, digest: str, *, force: bool) -> Path:
        """A pack locator as a local path: a directory or `.gtpack` as given, or an `oci://`
        reference pulled into the cache (again when `force`, or when its tag is due)."""
        if not locator.startswith("oci://"):
            return Path(locator)
        pinned = bool(digest) or parse_reference(locator).digest is not None
        path: Path | None = None
        if pack_id in self._pulled and self._pulled[pack_id][3] == locator:
            asked, path, failed, _ = self._pulled[pack_id]
            wait = min(PULL_RETRY_S, self.settings.pack_refresh_s) if failed \
                else self.settings.pack_refresh_s
            if not force and ((pinned and path is not None and path.is_file()) or
                              time.monotonic() - asked < wait):
                if path is None:
                    raise PackError("not pulled yet (the last pull failed)", entry=locator)
                return path
        progress = ProgressLog(lambda done, total: log.info(
            "pack pull", pack=pack_id, bytes=done, total=total,
            percent=round(100 * done / total) if total else 100))
        try:
            pulled = await resolve_pack(
                locator, base_dir=self.bundle.base_dir, cache_dir=self.settings.pack_cache_dir,
                digest=digest or None, limits=self._limits, progress=progress, options=self._oci)
        except PackError:
            self._pulled[pack_id] = (time.monotonic(), path, True, locator)
            raise
        if pulled != path:
            log.info("pack pulled", pack=pack_id, oci=locator, file=str(pulled))
        self._pulled[pack_id] = (time.monotonic(), pulled, False, locator)
        return pulled

"""The entries of a Greentic `.gtpack`: a ZIP read with the same structural refusals as ours,
except that Greentic's entries may be deflated.

Greentic's reader (greentic-pack `crates/greentic-pack/src/reader.rs`, `read_archive_entries`)
accepts any method its `zip` crate reads (packc stores, the greentic-demo archives are
deflated), skips directory entries, and refuses non-regular files, unsafe paths and duplicates.
Deflate is why the sizes matter here: every declared size is checked against the limits before
anything is inflated, and no entry is inflated past its declared size.
"""

import io
import stat
import zipfile

from greentic.errors import PackError
from greentic.pack.archive import DEFAULT_LIMITS, PackLimits, check_entry_name

METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def open_zip(data: bytes, limits: PackLimits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """The archive, or PackError when it is over the size limit or no ZIP at all."""
    if len(data) > limits.max_archive_bytes:
        raise PackError(f"archive is {len(data)} bytes, over the limit of "
                        f"{limits.max_archive_bytes}")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError,
            NotImplementedError) as exc:
        raise PackError(f"not a ZIP archive: {exc}") from None


def _checked_infos(archive: zipfile.ZipFile, limits: PackLimits) -> list[zipfile.ZipInfo]:
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > limits.max_entries:
        raise PackError(f"{len(infos)} entries, over the limit of {limits.max_entries}")
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        if name in seen:
            raise PackError("entry name appears twice", entry=name)
        seen.add(name)
        check_entry_name(name)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: the writer recorded no type
        if kind == stat.S_IFLNK:
            raise PackError("symbolic link: a pack holds regular files only", entry=name)
        if kind not in (0, stat.S_IFREG):
            raise PackError(f"not a regular file (type {kind:o})", entry=name)
        if info.flag_bits & 0x1:
            raise PackError("encrypted entry", entry=name)
        if info.compress_type not in METHODS:
            raise PackError(f"compression method {info.compress_type} (Greentic packs are "
                            "stored or deflated)", entry=name)
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise PackError(f"declares {info.file_size} bytes but holds {info.compress_size} "
                            "(corrupt archive)", entry=name)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise PackError(f"entries add up to more than {limits.max_total_bytes} bytes "
                            "uncompressed, over the limit", entry=name)
    return infos


def read_entries(data: bytes, limits: PackLimits = DEFAULT_LIMITS) -> dict[str, bytes]:
    """Every file entry by name, in archive order, after the structural checks."""
    with open_zip(data, limits) as archive:
        entries: dict[str, bytes] = {}
        for info in _checked_infos(archive, limits):
            try:
                with archive.open(info) as file:
                    content = file.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError,
                    NotImplementedError) as exc:  # e.g. a bad CRC or a truncated stream
                raise PackError(f"unreadable: {exc}", entry=info.filename) from None
            if len(content) != info.file_size:
                raise PackError(f"declares {info.file_size} bytes but holds "
                                f"{'more' if len(content) > info.file_size else len(content)} "
                                "(zip bomb or corrupt archive)", entry=info.filename)
            entries[info.filename] = content
    return entries


def entry_methods(data: bytes) -> dict[str, str]:
    """How each entry is compressed (`stored`/`deflated`), for inspect."""
    with open_zip(data, PackLimits(max_archive_bytes=len(data))) as archive:
        return {info.filename: METHODS.get(info.compress_type, str(info.compress_type))
                for info in archive.infolist() if not info.is_dir()}

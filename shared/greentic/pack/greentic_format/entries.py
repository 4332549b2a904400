"""The entries of a Greentic `.gtpack`: our ZIP reader (`greentic.pack.archive.read_zip`),
which also reads the deflated entries Greentic's reader accepts (packc stores, the
greentic-demo archives are deflated)."""

import zipfile

from greentic.pack.archive import DEFAULT_LIMITS, PackLimits, open_zip, read_zip

METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def read_entries(data: bytes, limits: PackLimits = DEFAULT_LIMITS) -> dict[str, bytes]:
    """Every file entry by name, in archive order, after the structural checks."""
    return read_zip(data, limits, deflated=True)


def entry_methods(data: bytes) -> dict[str, str]:
    """How each entry is compressed (`stored`/`deflated`), for inspect."""
    with open_zip(data, PackLimits(max_archive_bytes=len(data))) as archive:
        return {info.filename: METHODS.get(info.compress_type, str(info.compress_type))
                for info in archive.infolist() if not info.is_dir()}

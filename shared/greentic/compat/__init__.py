"""`greentic compat`: which of a Greentic repository's flows, packs and components this platform
accepts, file by file, with the reason for each refusal."""

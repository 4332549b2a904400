"""The `greentic` command line."""

"""WIT worlds this runtime hosts (files under `wit/`) and the host side of their imports."""

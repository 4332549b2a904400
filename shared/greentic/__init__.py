"""greentic: the library behind the five greentic-py services."""

__version__ = "0.1.0"

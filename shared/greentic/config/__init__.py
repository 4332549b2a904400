"""Configuration: environment settings (12-factor) and the bundle file."""

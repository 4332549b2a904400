"""Logging (and, later, traces and metrics)."""

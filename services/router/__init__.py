"""The router service process."""

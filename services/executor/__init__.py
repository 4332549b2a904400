"""The executor service process."""

"""The egress service process."""

"""The ingress service process."""

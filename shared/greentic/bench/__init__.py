"""Benchmarks: the platform end to end against a raw-NATS baseline of the same shape."""

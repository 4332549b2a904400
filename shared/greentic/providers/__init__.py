"""Messaging channels: each provider owns its ingress routes, verification and egress sender."""

"""Packs: where flows and components come from, and how they are published to executors."""

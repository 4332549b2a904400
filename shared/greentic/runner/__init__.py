"""The executor core: flow registry fed from NATS, turn execution, reply publishing."""

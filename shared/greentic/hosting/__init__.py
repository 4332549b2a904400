"""What every service process shares: lifecycle, health endpoints, signal handling, limits,
and the launcher that starts nats-server and the services as processes."""

"""What every service process shares: lifecycle, health endpoints, signal handling."""

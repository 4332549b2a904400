"""NATS plumbing: subjects, headers, connection, JetStream topology and the consumer loop."""

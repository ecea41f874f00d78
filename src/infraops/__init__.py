"""infraops: routine operations of a Nomad fleet as durable Temporal workflows."""

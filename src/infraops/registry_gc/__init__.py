"""Registry garbage collection: parse GC output and check registry integrity."""

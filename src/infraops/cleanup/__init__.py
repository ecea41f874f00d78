"""Node cleanup: stale per-job data directories and dangling Docker images."""

"""Logs, metrics and traces, set up once per process."""

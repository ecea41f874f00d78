"""Hosting roles: which workflows and activities poll which task queue."""

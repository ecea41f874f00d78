"""Thin typed clients for what the activities talk to; errors classified here."""

"""Helpers that install, start and stop the real services integration tests use."""

"""Helpers for tests of tinyc and of backends."""

"""Helpers for tests that need more than fixtures: a faulty network between app and database."""

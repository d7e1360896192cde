"""Helpers for users' own test suites (Prefect 2's `prefect.testing`)."""

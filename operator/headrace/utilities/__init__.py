"""Helpers users import by Prefect 2's module paths (`headrace.utilities.annotations`)."""

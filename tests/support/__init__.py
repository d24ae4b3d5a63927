"""Helpers shared by tests and benchmarks: fixtures that build their own data."""

"""Factories for tests, demos and benchmarks (shipped with the package, as lhotse does)."""

"""Benchmarks of the data plane (not tests): see docs/performance.md."""

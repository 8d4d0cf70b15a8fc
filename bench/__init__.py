"""Benchmarks and the soak: measured against the real system, never in timed tests."""

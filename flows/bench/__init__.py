"""Benchmarks of the flows themselves: orchestration overhead, resume cost, peak memory."""

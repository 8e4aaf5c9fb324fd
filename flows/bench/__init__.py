"""Benchmarks of the flow as a whole (Prefect overhead, peak memory), run by ``mblip bench flow|memory``."""

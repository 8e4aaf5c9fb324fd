"""Benchmarks, run by ``mblip bench``: each prints both sides and their ratio in one run."""

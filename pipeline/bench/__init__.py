"""Benchmarks of the pipeline's stages, run by ``mblip bench``: each prints both sides and their ratio in one run."""

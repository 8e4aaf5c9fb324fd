"""The trainer's demo: an English training output from the demo scenes, a tiny end-to-end evaluation, and
sample or placeholder files for the evaluation benchmarks."""

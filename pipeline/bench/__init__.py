"""Benchmarks (commands, not tests): ``mblip bench translate`` and ``mblip bench translate --stage``."""

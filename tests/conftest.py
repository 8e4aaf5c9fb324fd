"""Shared fixtures: tiny real models and demo data built locally (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a hub; make any accidental attempt fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_TEXTS = [
    "A red circle on a plain background.",
    "There is a blue square in the picture.",
    "A simple drawing of a green triangle.",
    "What color is the square?",
    "What shape is shown in the image?",
    "Is the triangle blue?",
    "Two dogs run across 3 fields.",
    "yes", "no", "red", "blue", "circle",
] * 10


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A converted (CT2 int8) random-weight NLLB-architecture model: real code path, noise output."""
    from pipeline.nllb.build import build_tiny_random_model

    return build_tiny_random_model(tmp_path_factory.mktemp("tiny-nllb"), TINY_TEXTS, vocab_size=120)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from pipeline.demo_data import generate_demo_data

    root = tmp_path_factory.mktemp("demo-data")
    generate_demo_data(root, n_images=12, seed=0)
    return root

"""Fixtures for the trainer tests: tiny BLIP-2 / mT5 / BLOOM checkpoints and the demo scenes as an
English training output, all built locally and loaded through the hub-id-or-directory code path."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "model" / "demo" / "train_tiny.yaml"
BLIP2_TEXT_WIDTH = 64  # tiny BLIP-2's (English) T5 width: mT5 matches it, BLOOM does not
BLOOM_WIDTH = 48


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls run fastest on one thread, and the test machine's cores are shared."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def demo_output(demo_root, tmp_path_factory) -> Path:
    from model.demo.trainer import write_english_demo_output

    return write_english_demo_output(demo_root, tmp_path_factory.mktemp("demo-output"))


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, demo_output) -> dict[str, Path]:
    import polars as pl

    from model.tiny import build_tiny_bloom, build_tiny_blip2, build_tiny_mt5

    root = tmp_path_factory.mktemp("tiny-models")
    rows = pl.read_parquet(demo_output / "data" / "en" / "part-00000.parquet")
    texts = rows["text_en"].to_list() + ["Caption the image in English.", "Answer in English:"]
    return {
        "blip2": build_tiny_blip2(root / "blip2", image_size=32, text_width=BLIP2_TEXT_WIDTH),
        "mt5": build_tiny_mt5(root / "mt5", texts, width=BLIP2_TEXT_WIDTH),
        "bloom": build_tiny_bloom(root / "bloom", texts, width=BLOOM_WIDTH),
    }


@pytest.fixture()
def make_config(tiny_dirs, demo_output, tmp_path):
    """A TrainConfig from model/demo/train_tiny.yaml pointed at the tiny models and the demo output."""
    from model.config import load_config

    def make(llm: str = "mt5", **sections):
        overrides = {
            "model": {"blip2": str(tiny_dirs["blip2"]), "llm": str(tiny_dirs[llm])},
            "data": {"manifest": str(demo_output), "num_workers": 0},
            "train": {"output_dir": str(tmp_path / "run"), "max_steps": 4, "eval_every": 0, "save_every": 0},
        }
        for section, values in sections.items():
            overrides.setdefault(section, {}).update(values)
        return load_config(TINY_CONFIG, overrides)

    return make

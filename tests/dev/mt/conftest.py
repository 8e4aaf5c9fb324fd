"""Fixtures for the shipped-translator tooling tests: a tiny Multi30k-shaped corpus, a tiny trainer configuration,
xGQA files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dev.mt.train_small import TrainConfig
from pipeline.nllb.evaluate import MULTI30K_LANGUAGES, read_lines
from pipeline.nllb.shipped import shipped_val_dir

TINY = TrainConfig(
    vocab_size=300, d_model=32, encoder_layers=1, decoder_layers=1, attention_heads=2, ffn_dim=64,
    batch_tokens=400, max_len=256, lr=3e-3, warmup_steps=2, max_steps=6, eval_every=0, eval_sentences=5,
    checkpoint_every=2, threads=1,
)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    """train/val.{en,de,fr,cs}.gz: 120 aligned lines of the shipped validation split each."""
    root = tmp_path_factory.mktemp("multi30k-tiny")
    for lang in MULTI30K_LANGUAGES:
        lines = read_lines(shipped_val_dir() / f"val.{lang}.gz", limit=120)
        for split, part in (("train", lines[:100]), ("val", lines[100:])):
            with gzip.open(root / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(part) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_cfg() -> TrainConfig:
    """A trainer configuration that runs a few steps in seconds."""
    return TINY


def write_xgqa(root: Path, records: dict[str, dict[str, dict]]) -> Path:
    """``train_48.<lang>.json.gz`` in xGQA's official format: ``{lang: {question_id: record}}``."""
    root.mkdir(parents=True, exist_ok=True)
    for lang, data in records.items():
        with gzip.open(root / f"train_48.{lang}.json.gz", "wt", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
    return root


@pytest.fixture(scope="session")
def make_xgqa():
    """``write_xgqa`` as a fixture (test modules cannot import conftest)."""
    return write_xgqa

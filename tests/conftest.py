"""Shared fixtures: tiny real models and demo data built locally (no downloads)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Tests never reach a hub; make any accidental attempt fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Prefect's embedded server starts in a subprocess; on a busy 2-core machine it needs more than the
# default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# One embedded Prefect database for the whole test session, never the user's ~/.prefect. (Prefect
# keeps its embedded server for the process, so a per-test PREFECT_HOME would not take effect.)
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="mblip-tests-prefect-")
os.environ.pop("PREFECT_API_URL", None)

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
def only_bt_rule() -> dict:
    """Filter settings that leave only the back-translation rule on (None = off): a random-weight
    model's output fails every cheap check, so mechanics tests that want rows kept use these."""
    return {
        **dict.fromkeys(("min_script_share", "max_copy_overlap", "max_repeat_run", "max_repeat_ngram",
                         "max_compression", "min_length_ratio", "max_length_ratio", "langid_max_rank",
                         "min_fwd_logprob", "min_fwd_margin")),
        "reject_inflated_short": False, "require_numbers": False, "check_answers": False,
    }


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A converted (CT2 int8) random-weight NLLB-architecture model: real code path, noise output."""
    from pipeline.nllb.shapes import build_tiny_random_model

    return build_tiny_random_model(tmp_path_factory.mktemp("tiny-nllb"), TINY_TEXTS, vocab_size=120)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from pipeline.demo.data import generate_demo_data

    root = tmp_path_factory.mktemp("demo-data")
    generate_demo_data(root, n_images=12, seed=0)
    return root


def write_processed_chunks(work: Path, n_rows: int = 60, langs=("de", "fr", "iw"), chunks: int = 2, seed: int = 0):
    """Processed chunks as the chunk stage writes them (ROW_SCHEMA, kept and rejected rows with scores),
    without running a translator: for tests of the output stage. Returns (paths, ingest counts)."""
    import random

    import polars as pl

    from pipeline.languages import get_language
    from pipeline.schema import ROW_SCHEMA, conform, make_example_id

    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        source, task = ("coco_captions", "caption") if i % 3 else ("vqav2", "vqa")
        lang = langs[i % len(langs)]
        kept = i % 4 != 0
        rows.append({
            "example_id": make_example_id(source, str(i)), "source": source, "source_record_id": str(i),
            "source_file": f"{source}.json", "task": task, "image_id": str(i // 5),
            "image_path": f"train2014/COCO_train2014_{i // 5:012d}.jpg",
            "text_en": f"A red circle number {i}." if task == "caption" else f"What color is shape {i}?",
            "answer_en": "red" if task == "vqa" else None, "answers_en": ["red"] * 10 if task == "vqa" else None,
            "lang": lang, "lang_nllb": get_language(lang).nllb, "text_tgt": f"[{lang}] text {i}",
            "answer_tgt": f"[{lang}] rot" if task == "vqa" else None, "backtranslation_en": f"A red circle {i}.",
            "score_bt_chrf": rng.uniform(40, 90) if kept else rng.uniform(0, 30),
            "score_length_ratio": rng.uniform(0.7, 1.5),
            "status": "kept" if kept else "rejected", "reject_reason": None if kept else "low_bt_chrf",
        })
    frame = conform(pl.DataFrame(rows), ROW_SCHEMA)
    paths, counts = [], {}
    step = -(-n_rows // chunks)
    for i in range(chunks):
        part = frame.slice(i * step, step)
        for source in ("coco_captions", "vqav2"):
            sub = part.filter(pl.col("source") == source)
            path = work / "processed" / source / f"chunk-{i:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            sub.write_parquet(path)
            paths.append(path)
            c = counts.setdefault(source, {"rows": 0, "quarantined": 0})
            c["rows"] += sub.height
    return paths, counts


@pytest.fixture(scope="session")
def make_processed():
    """``write_processed_chunks`` as a fixture (test modules cannot import conftest)."""
    return write_processed_chunks

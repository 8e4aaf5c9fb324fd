"""Random-weight NLLB-shaped models for the benchmarks, built once into a cache directory and reused.

Weights are random, so outputs are noise, but the compute is exactly that of the published
checkpoint of the same shape (``NLLB_600M_SHAPE`` = nllb-200-distilled-600M, ``NLLB_1_3B_SHAPE`` =
the 1.3B model the reference used): speed measured on them is the speed of the real model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.bench.corpus import caption_sentences, vqa_stream
from pipeline.nllb.convert import convert_nllb
from pipeline.nllb.shapes import NLLB_1_3B_SHAPE, NLLB_600M_SHAPE, NllbShape, build_random_nllb, train_sentencepiece

log = logging.getLogger(__name__)

# "tiny" exists for smoke tests of the benchmark code itself; its numbers mean nothing.
SHAPES: dict[str, NllbShape] = {
    "600m": NLLB_600M_SHAPE, "1.3b": NLLB_1_3B_SHAPE, "tiny": NllbShape(d_model=64, ffn_dim=128),
}
DEFAULT_CACHE = Path(os.environ.get("MBLIP_BENCH_CACHE", Path.home() / ".cache" / "mblip" / "bench"))
HF_DONE = "_BUILT"


def bench_corpus() -> list[str]:
    """Text the benchmark tokenizer is trained on (the same generators the benchmarks draw from)."""
    return caption_sentences(3000, seed=123) + [q for q, _ in vqa_stream(3000, seed=123)]


def ensure_hf_model(shape: str = "600m", cache_dir: str | Path = DEFAULT_CACHE) -> Path:
    """The Hugging Face checkpoint of ``shape`` (random weights), built on first use."""
    if shape not in SHAPES:
        raise ValueError(f"unknown model shape {shape!r}; choose one of {', '.join(SHAPES)}")
    root = Path(cache_dir) / f"nllb-{shape}-random"
    hf_dir = root / "hf"
    if (hf_dir / HF_DONE).exists():
        return hf_dir
    log.info("building random NLLB %s model in %s (once)", shape, root)
    spm_path = train_sentencepiece(bench_corpus(), root / "spm" / "spm", vocab_size=2000)
    build_random_nllb(hf_dir, spm_path, shape=SHAPES[shape], seed=0)
    (hf_dir / HF_DONE).write_text("ok\n")
    return hf_dir


def ensure_ct2_model(shape: str = "600m", quantization: str = "int8", cache_dir: str | Path = DEFAULT_CACHE) -> Path:
    """The converted CTranslate2 model (skipped when an up-to-date conversion exists)."""
    hf_dir = ensure_hf_model(shape, cache_dir)
    return convert_nllb(str(hf_dir), hf_dir.parent / f"ct2-{quantization}", quantization=quantization)


def engine_threads(threads: int | None, device: str = "cpu") -> dict:
    """The engine's thread settings for ``threads`` cores, split as a run splits them (one batch per core);
    None or 0 = the run's default on every core this process may use."""
    return dict(inter_threads=threads, intra_threads=1) if threads and device == "cpu" else {}

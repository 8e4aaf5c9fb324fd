"""``mblip eval BENCHMARK ...``: score an exported model on one of the paper's benchmarks (``model.evaluate``);
``mblip eval-report RUN_DIR``: a run's scores as a Markdown table, next to the paper's numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from model.evaluate.benchmarks import BENCHMARKS


def add_parsers(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval", help="score a model on a multilingual benchmark (official files), per language")
    p.add_argument("benchmark", choices=sorted(BENCHMARKS))
    p.add_argument("--data", type=Path, required=True, help="folder with the benchmark's official annotation files")
    p.add_argument("--images", type=Path, required=True, help="image folder")
    p.add_argument(
        "--model",
        type=Path,
        required=True,
        help="exported model (mblip export-model), a checkpoint (checkpoints/step-*) or a training output",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="results JSON; predictions go beside it (.predictions.jsonl)"
    )
    p.add_argument("--languages", nargs="*", default=None, help="subset of the benchmark's languages (POPE: subsets)")
    p.add_argument("--limit", type=int, default=None, help="first N items per language")
    p.add_argument("--split", default=None, help="file split (default test; xGQA also dev, train_48, testdev, ...)")
    p.add_argument("--skip-missing", action="store_true", help="count and skip missing images and malformed records")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument(
        "--quantization",
        default="auto",
        choices=["auto", "8bit", "4bit", "bf16", "fp32", "none"],
        help="the LLM's weights (auto: on a GPU the reference's, an export in 8-bit and a checkpoint as trained; "
        "fp32 on CPU); bf16/fp32 = unquantised; none = unquantised in the device's dtype",
    )
    p.add_argument(
        "--vision-precision",
        default="auto",
        choices=["auto", "fp16", "bf16", "fp32"],
        help="autocast of the ViT and Q-Former (auto: fp16 on a GPU as the reference, fp32 on CPU)",
    )
    p.add_argument(
        "--language-names",
        default="project",
        choices=["project", "reference"],
        help="language names in prompts: project (corrected) or the reference's spelling (Ukranian, Portugese)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler="eval:cmd_evaluate")

    r = subparsers.add_parser(
        "eval-report", help="a run's `mblip eval` scores as a Markdown table, next to the paper's numbers"
    )
    r.add_argument("run_dir", type=Path, help="folder with `mblip eval --out` files (and its eval/ subfolder)")
    r.add_argument(
        "--paper",
        type=Path,
        default=None,
        help="the paper's numbers (JSON: benchmark -> {scores: {lang: value}, mean, source}; docs/evaluation.md)",
    )
    r.set_defaults(handler="eval:cmd_report")
    return p

"""Dataset commands: languages, generate, regenerate, calibrate, fetch-images, demo, verify, export."""

from __future__ import annotations

import argparse
from pathlib import Path

from mblip.fetch_images import add_parser as add_fetch_images
from pipeline.calibrate_defaults import CALIBRATION_BOUNDS, DEFAULT_BOUND, DEFAULT_MIN_ROWS, DEFAULT_NOISY_SHARE


def _add_runner_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="run chunk tasks on a local Dask cluster of N worker processes (default: threads here)")
    p.add_argument("--dask-address", default=None,
                   help="run chunk tasks on an existing Dask cluster, e.g. tcp://scheduler:8786")


def add_parsers(sub) -> None:
    p = sub.add_parser("languages", help="print the 96-language table")
    p.set_defaults(handler="data:cmd_languages")

    p = sub.add_parser("generate", help="build a dataset from a YAML config (Prefect flow)")
    p.add_argument("config", type=Path)
    p.add_argument("--out", default=None,
                   help="output folder or fsspec URL, e.g. s3://bucket/prefix (overrides output.dir)")
    _add_runner_args(p)
    p.set_defaults(handler="data:cmd_generate")

    p = sub.add_parser("regenerate",
                       help="update a finished dataset, redoing only what a change touches (Prefect flow)")
    p.add_argument("out", type=Path, help="output root of a finished run (holds config.resolved.yaml)")
    p.add_argument("--languages", nargs="*", default=[], help="recompute the rows of these languages in every chunk")
    p.add_argument("--sources", nargs="*", default=[], help="read these sources again and reprocess their chunks")
    p.add_argument("--model", default=None, help="new converted MT model directory (chunks are translated again)")
    p.add_argument("--min-bt-chrf", type=float, default=None,
                   help="new back-translation chrF++ threshold (re-decided from stored scores, nothing translated)")
    p.add_argument("--reverse", default=None, choices=["score", "decode", "both"],
                   help="filter's reverse check; outputs stored under another mode are rescored, not translated")
    p.add_argument("--contrasts", type=int, default=None,
                   help="other sources each source margin is scored against (filter.contrasts; e.g. 4 to store "
                        "margins for calibration); chunks are processed again, texts come from the translation cache")
    p.add_argument("--rules", default=None,
                   help="filter rules YAML (e.g. from mblip calibrate): its thresholds replace the dataset's, "
                        "re-decided from stored scores, nothing translated; the manifest names the file")
    p.add_argument("--config", type=Path, default=None, help="config to use instead of OUT/config.resolved.yaml")
    _add_runner_args(p)
    p.set_defaults(handler="data:cmd_regenerate")

    p = sub.add_parser("calibrate",
                       help="propose per-language filter thresholds from a finished output's stored scores")
    p.add_argument("out", type=Path, help="output root of a finished run (holds manifest.json)")
    p.add_argument("--rules", type=Path, required=True,
                   help="filter rules YAML to write (what regenerate --rules and score --rules read)")
    p.add_argument("--noisy-share", type=float, default=DEFAULT_NOISY_SHARE,
                   help="share of each language's rows taken as noisy per signal: the cut of a min_ knob is this "
                        "quantile of the language's scores, of a max_ knob 1 minus it (OpusFilter autogen's "
                        "--noisy-percentile; higher: stricter)")
    p.add_argument("--min-rows", type=int, default=DEFAULT_MIN_ROWS,
                   help="languages with fewer scored rows of a signal keep the global threshold")
    p.add_argument("--bound", default=DEFAULT_BOUND, choices=CALIBRATION_BOUNDS,
                   help="global: a language's cut is never laxer than the global threshold; none: the plain "
                        "percentiles (OpusFilter's)")
    p.add_argument("--knobs", nargs="*", default=None,
                   help="min_/max_ thresholds to calibrate (default: every one that is on and has stored scores)")
    p.set_defaults(handler="data:cmd_calibrate")

    add_fetch_images(sub)

    p = sub.add_parser("demo", help="generate demo data and run the whole pipeline on it")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--images", type=int, default=200, help="number of demo images (5 captions + 3 questions each)")
    p.add_argument("--no-web", action="store_true", help="skip the web captions and matching sources (fetch-images)")
    p.add_argument("--base-only", action="store_true",
                   help="only COCO captions and VQAv2 (not every task of the mix, no web sources)")
    p.set_defaults(handler="data:cmd_demo")

    p = sub.add_parser("verify", help="recompute checksums and row counts of an output against its manifest")
    p.add_argument("out", help="output root (the folder holding manifest.json), or its fsspec URL (s3://...)")
    p.set_defaults(handler="data:cmd_verify")

    p = sub.add_parser("export", help="write the trainer view (Parquet) and/or the mBLIP JSON format of an output")
    p.add_argument("out", type=Path, help="output root (the folder holding manifest.json)")
    p.add_argument("--dest", type=Path, default=None, help="export folder (default: OUT/export)")
    p.add_argument("--format", nargs="+", default=["trainer", "mblip"],
                   choices=["trainer", "mblip", "merged", "webdataset"],
                   help="trainer: Parquet per shard; mblip: one JSON per language; merged: every language in "
                        "mblip/task_mix_mt.json, like the released task_mix_v2_mt.json; webdataset: tar shards "
                        "DEST/webdataset/{lang}/shard-*.tar ({key}.jpg + {key}.json)")
    p.add_argument("--english-answer-prob", type=float, default=0.5,
                   help="share of VQA rows with a translated answer that get the English answer and an English "
                        "prompt (the trainer's coin flip; mBLIP: 0.5; 0 = always the translated answer)")
    p.add_argument("--shard-rows", type=int, default=10_000, help="samples per webdataset tar")
    p.add_argument("--languages", nargs="*", default=[], help="project codes (default: every kept language)")
    p.add_argument("--prompts", default="row", choices=["row", "english"],
                   help="row: the shards' translated prompts (English templates where missing); "
                        "english: English templates")
    p.set_defaults(handler="data:cmd_export_dataset")

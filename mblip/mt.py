"""Translation-model commands: convert-nllb, translate, eval-mt, score, eval-filter."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.languages import SOURCE_NLLB


def _add_filter_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="converted NLLB directory for back-translation (default: the shipped model)")
    p.add_argument("--no-backtranslation", action="store_true", help="heuristic signals only (no model)")
    p.add_argument("--rules", default=None,
                   help="filter rules YAML (default: built-in thresholds, see configs/filter.yaml)")


def add_parsers(sub) -> None:
    p = sub.add_parser("convert-nllb", help="convert an NLLB checkpoint (hub id or directory) to CTranslate2")
    p.add_argument("model", help="Hugging Face id (e.g. facebook/nllb-200-distilled-600M) or local directory")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--quantization", default="int8",
                   help="int8 | int8_float16 | int8_bfloat16 | int8_float32 | float16 | bfloat16 | float32")
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    p.add_argument("--force", action="store_true", help="convert even if an up-to-date conversion exists")
    p.add_argument("--languages", default=None,
                   help="comma-separated NLLB codes, for a model trained on only some languages (default: all)")
    p.set_defaults(handler="mt:cmd_convert_nllb")

    p = sub.add_parser("score", help="score translation pairs (JSONL/Parquet src, tgt, lang) with every filter signal")
    p.add_argument("pairs", type=Path, help="JSON Lines or .parquet with src (English), tgt, lang (NLLB code)")
    p.add_argument("--out", type=Path, required=True, help="output JSON Lines (input order, signals, keep, reason)")
    p.add_argument("--contrasts", type=int, default=None,
                   help="other sources each source margin is scored against (one scoring pass each; default: 4 when "
                        "the rules have a margin rule on, as the shipped model's do, else no margin)")
    _add_filter_model_args(p)
    p.set_defaults(handler="mt:cmd_score")

    p = sub.add_parser("eval-filter", help="filter recall per failure mode on corrupted multi30k human translations")
    p.add_argument("--data", type=Path, default=None,
                   help="multi30k directory (default: the shipped val copy; other splits need it)")
    p.add_argument("--split", default="val", help="val (report) or train (tune thresholds)")
    p.add_argument("--langs", default="de,fr,cs", help="comma-separated languages present in the data")
    p.add_argument("--limit", type=int, default=None, help="seeded sample of this many lines (default: all)")
    p.add_argument("--seed", type=int, default=0, help="sample and corruption seed")
    p.add_argument("--json", type=Path, default=None, help="also write the rates as JSON")
    p.add_argument("--reverse", default="decode", choices=["score", "decode", "both"],
                   help="model signals: decoded back-translation + chrF++ (default) or the reverse score")
    _add_filter_model_args(p)
    p.set_defaults(handler="mt:cmd_eval_filter")

    p = sub.add_parser("translate", help="translate lines (file or stdin) to stdout with a converted NLLB model")
    p.add_argument("file", nargs="?", default=None, help="one sentence per line (default: stdin)")
    p.add_argument("--model", default=None, help="converted NLLB directory (default: the shipped Multi30k model)")
    p.add_argument("--src", default=SOURCE_NLLB, help=f"source language, NLLB or project code (default {SOURCE_NLLB})")
    p.add_argument("--tgt", required=True, help="target language, NLLB or project code, e.g. deu_Latn")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per batch (0 = CTranslate2 default)")
    p.add_argument("--chunk-lines", type=int, default=1000, help="lines read and translated at a time")
    p.set_defaults(handler="mt:cmd_translate")

    p = sub.add_parser("eval-mt", help="chrF++ and BLEU of a converted NLLB model on parallel data "
                                        "(default: shipped model, Multi30k val)")
    p.add_argument("--model", default=None, help="converted NLLB directory (default: the shipped Multi30k model)")
    p.add_argument("--data", type=Path, default=None,
                   help="directory with SPLIT.LANG(.gz) files (default: shipped Multi30k val); "
                   "`xgqa`: the shipped held-out xGQA questions (en-de, de-en)")
    p.add_argument("--split", default="val")
    p.add_argument("--directions", default=None,
                   help="comma-separated src-tgt project codes (default: en-de,en-fr,en-cs,de-en,fr-en,cs-en)")
    p.add_argument("--limit", type=int, default=None, help="first N lines per direction (default: all)")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")
    p.set_defaults(handler="mt:cmd_eval_mt")

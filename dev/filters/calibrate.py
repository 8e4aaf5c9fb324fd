"""Calibrate the model thresholds of the quality filter for one translation model, by measurement.

``python -m dev.filters.calibrate [--model DIR] [--split train --limit 1000] [--write]`` builds the
labelled set of ``evaluate.py`` (human multi30k pairs and their corruptions) on a seeded sample of the
tuning split, computes every model signal once (``reverse="both"``), then searches a grid per reverse
mode:

- ``score``: ``min_fwd_margin`` x ``min_bt_logprob`` x ``min_fwd_logprob`` x ``min_sentence_margin``
  (source margin, reverse and forward forced-decoding scores, the lowest margin of an output's sentences);
- ``decode``: ``min_bt_chrf`` (back-translation chrF++), with the ``min_fwd_margin`` and
  ``min_fwd_logprob`` chosen for ``score`` (the default mode): one rule set serves both modes.

Among the settings that keep at least ``--min-kept`` of the human pairs it picks the one whose worst
corruption kind is caught most often (ties: more human pairs kept). The heuristic thresholds stay as
they are. ``--write`` stores the result where ``rules.load_rules(shipped_model=True)`` reads it (the
shipped model; another model's thresholds go into its run's ``filter:`` config). Report on val with
``mblip eval-filter`` or ``mblip bench filter``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import polars as pl

from pipeline.filters.evaluate import HUMAN, MODES, build_labelled_set, read_multi30k
from pipeline.filters.quality import apply_quality_filter
from pipeline.filters.rules import SHIPPED_THRESHOLDS_FILE, FilterRules, decide
from pipeline.languages import SOURCE_NLLB
from pipeline.nllb.engine import load_translator
from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir

SCORE_GRID = {
    "min_fwd_margin": (0.0, 0.25, 0.5, 0.75, 1.0, None),
    "min_bt_logprob": (-2.5, -3.0, -3.5, -4.0, -4.5, -5.0, None),
    "min_fwd_logprob": (-4.0, -4.5, -5.0, None),
    "min_sentence_margin": (0.0, 0.25, 0.5, 1.0, None),
}
MODEL_KNOBS = ("min_bt_chrf", "min_fwd_margin", "min_fwd_logprob", "min_sentence_margin", "min_bt_logprob",
               "max_dual_xent")
DECODE_GRID = {"min_bt_chrf": (10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0, None)}
# Share of human pairs the chosen setting must keep. Above the 95% goal on purpose: the shipped model was
# trained on multi30k train, so its scores of train pairs are optimistic; absolute log-prob thresholds
# set at 97.5% on train kept 86.9% of val pairs (relative ones, the margin and chrF++, move far less).
MIN_KEPT = 0.985


def rates(scored: pl.DataFrame, rules) -> dict[str, float]:
    """Human kept and each corruption kind rejected, for ``rules`` on already computed signals."""
    decided = decide(scored.drop("status", "reject_reason", strict=False), rules)
    out = {}
    for label in (HUMAN, *MODES):
        part = decided.filter(pl.col("label") == label)
        if part.height:
            rejected = float((part["status"] == "rejected").mean())
            out[label] = 1 - rejected if label == HUMAN else rejected
    return out


def search(scored: pl.DataFrame, base, grid: dict[str, tuple], min_kept: float = MIN_KEPT) -> tuple[dict, dict]:
    """The grid point (knob -> value) that maximises the worst kind's recall with human kept >= min_kept."""
    best, best_key = None, None
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        setting = dict(zip(names, values))
        r = rates(scored, base.model_copy(update=setting))
        if r[HUMAN] < min_kept:
            continue
        key = (min(v for k, v in r.items() if k != HUMAN), r[HUMAN])
        if best_key is None or key > best_key:
            best, best_key = (setting, r), key
    if best is None:
        raise ValueError(f"no grid setting keeps {min_kept:.1%} of the human pairs; lower --min-kept")
    return best


def score_labelled(data_dir, split: str, limit: int | None, seed: int, translator, model_languages) -> pl.DataFrame:
    """The labelled set with every signal (model signals on the rows the heuristics keep)."""
    labelled = build_labelled_set(read_multi30k(data_dir, split), limit=limit, seed=seed)
    off = {k: None for k in MODEL_KNOBS}
    return apply_quality_filter(labelled, translator, FilterRules(**off), model_languages=model_languages,
                                score_rejected=False, reverse="both")


def calibrate(scored: pl.DataFrame, min_kept: float = MIN_KEPT) -> tuple[dict, dict[str, dict]]:
    """Thresholds for both reverse modes and the rates each mode reaches with them on ``scored``."""
    off = FilterRules(**dict.fromkeys(MODEL_KNOBS))
    score_setting, score_rates = search(scored.with_columns(pl.lit(None, dtype=pl.Float64).alias("score_bt_chrf")),
                                        off, SCORE_GRID, min_kept)
    fwd = {k: score_setting[k] for k in ("min_fwd_logprob", "min_fwd_margin", "min_sentence_margin")}
    decode_setting, decode_rates = search(scored.with_columns(pl.lit(None, dtype=pl.Float64).alias("score_bt_logprob")),
                                          off.model_copy(update=fwd), DECODE_GRID, min_kept)
    return {**decode_setting, **score_setting}, {"score": score_rates, "decode": decode_rates}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="converted NLLB directory (default: the shipped model)")
    p.add_argument("--data", type=Path, required=True,
                   help="multi30k directory with {split}.{en,de,fr,cs}.gz (e.g. the Multi30k train split)")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=1000, help="seeded sample of this many lines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-kept", type=float, default=MIN_KEPT, help="share of human pairs to keep (0-1)")
    p.add_argument("--write", action="store_true",
                   help="write the shipped model's thresholds file (shipped model only)")
    args = p.parse_args(argv)
    if args.write and args.model:
        p.error("--write stores the shipped model's thresholds; put another model's in its filter config")

    if args.model:
        translator, languages = load_translator(args.model), None
    else:
        translator = load_translator(shipped_model_dir())
        languages = frozenset(t for s, t in SHIPPED_DIRECTIONS if s == SOURCE_NLLB)
    scored = score_labelled(args.data, args.split, args.limit, args.seed, translator, languages)
    setting, mode_rates = calibrate(scored, args.min_kept)
    for mode, r in mode_rates.items():
        print(f"{mode:<7} " + "  ".join(f"{k} {100 * v:.1f}%" for k, v in r.items()))
    lines = [f"{k}: {v}" for k, v in setting.items()]
    print("\n".join(lines))
    if args.write:
        header = (f"# Model thresholds for the shipped multi30k model (pipeline/assets/nllb-multi30k), written by\n"
                  f"# `python -m dev.filters.calibrate --split {args.split} --limit {args.limit} "
                  f"--seed {args.seed} --min-kept {args.min_kept} --write`\n"
                  "# (grid search on the labelled set, see calibrate.py).\n")
        SHIPPED_THRESHOLDS_FILE.write_text(header + "\n".join(lines) + "\n")
        print(f"wrote {SHIPPED_THRESHOLDS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The filter calibration tool (``python -m dev.filters.calibrate``) on a small sample of the shipped val
split, scored by the shipped model: the grid point it picks keeps enough human pairs and catches the worst
corruption kind at least as often as any other such point; ``--write`` stores thresholds the rules load."""

from __future__ import annotations

import itertools

import pytest
import yaml

from dev.filters import calibrate
from pipeline.filters.evaluate import HUMAN
from pipeline.filters.rules import FilterRules, load_rules
from pipeline.languages import SOURCE_NLLB
from pipeline.nllb.engine import load_translator
from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir, shipped_val_dir

LIMIT = 15  # val lines: 45 human pairs and their corruptions
MIN_KEPT = 0.9


@pytest.fixture(scope="module")
def scored():
    languages = frozenset(t for s, t in SHIPPED_DIRECTIONS if s == SOURCE_NLLB)
    return calibrate.score_labelled(shipped_val_dir(), "val", LIMIT, 0, load_translator(shipped_model_dir()),
                                    languages)


def _worst(rates: dict) -> float:
    return min(v for k, v in rates.items() if k != HUMAN)


def test_search_picks_the_best_grid_point_that_keeps_enough_human_pairs(scored):
    off = FilterRules(min_bt_chrf=None, min_fwd_margin=None, min_fwd_logprob=None, min_bt_logprob=None,
                      max_dual_xent=None)
    grid = {"min_fwd_margin": (0.0, 0.5, 1.0, None), "min_bt_logprob": (-3.0, -4.0, None)}
    setting, rates = calibrate.search(scored, off, grid, MIN_KEPT)
    assert rates == calibrate.rates(scored, off.model_copy(update=setting)) and rates[HUMAN] >= MIN_KEPT
    for values in itertools.product(*grid.values()):
        other = calibrate.rates(scored, off.model_copy(update=dict(zip(grid, values))))
        if other[HUMAN] >= MIN_KEPT:
            assert (_worst(other), other[HUMAN]) <= (_worst(rates), rates[HUMAN]), values
    with pytest.raises(ValueError, match="lower --min-kept"):
        calibrate.search(scored, off, grid, min_kept=1.01)


def test_calibrate_gives_both_modes_one_rule_set(scored):
    setting, mode_rates = calibrate.calibrate(scored, MIN_KEPT)
    assert set(setting) == set(calibrate.SCORE_GRID) | set(calibrate.DECODE_GRID)
    assert set(mode_rates) == {"score", "decode"}
    assert all(r[HUMAN] >= MIN_KEPT for r in mode_rates.values())
    assert _worst(mode_rates["score"]) > 0.5 and _worst(mode_rates["decode"]) > 0.5


def test_the_command_prints_and_writes_thresholds_the_rules_load(tmp_path, monkeypatch, capsys):
    target = tmp_path / "shipped_model_filter.yaml"
    monkeypatch.setattr(calibrate, "SHIPPED_THRESHOLDS_FILE", target)  # never the package's own file
    argv = ["--data", str(shipped_val_dir()), "--split", "val", "--limit", "8", "--min-kept", str(MIN_KEPT)]
    assert calibrate.main([*argv, "--write"]) == 0
    written = yaml.safe_load(target.read_text())
    printed = capsys.readouterr().out
    assert all(f"{k}: {v}" in printed for k, v in written.items())
    assert printed.splitlines()[0].startswith("score ") and printed.splitlines()[1].startswith("decode ")
    rules = load_rules(target)
    assert {k: getattr(rules, k) for k in written} == written
    with pytest.raises(SystemExit):  # refused before anything is scored
        calibrate.main([*argv, "--write", "--model", str(shipped_model_dir())])
    assert "--write stores the shipped model's thresholds" in capsys.readouterr().err

"""``mblip calibrate``: per-language cuts are the percentiles of each language's stored scores (every kept and
rejected row of a real output built on the tiny model), bounded by the global value, with a fallback for
languages with too few rows; the rules file it writes loads as the rules it proposed."""

import json

import numpy as np
import polars as pl
import pytest
import yaml

from pipeline.build import build_dataset
from pipeline.calibrate import (
    SOURCE_GLOBAL_BOUND, SOURCE_PERCENTILE, SOURCE_TOO_FEW, calibrate_knob, calibrate_output, threshold_knobs,
    write_rules,
)
from pipeline.config import load_config
from pipeline.demo.data import demo_paths
from pipeline.filters.rules import load_rules
from pipeline.output_dir import MANIFEST


@pytest.fixture(scope="module")
def output(tmp_path_factory, demo_root, tiny_model_dir):
    """A real output of the demo scenes in de, fr and cs, translated by the tiny random model: scores of
    every signal, kept and rejected rows."""
    tmp = tmp_path_factory.mktemp("calibrate")
    paths = demo_paths(demo_root)
    config = {
        "sources": [
            {"type": "coco_captions", "annotations": str(paths.captions), "images": str(paths.images / "train2014")},
            {"type": "vqav2", "questions": str(paths.questions), "annotations": str(paths.annotations),
             "images": str(paths.images)},
        ],
        "run": {"languages": ["de", "fr", "cs"], "chunk_rows": 50},
        "translation": {"model": str(tiny_model_dir), "compute_type": "int8", "max_length_ratio": 0.01},
        "filter": {"min_bt_chrf": 1.0, "reverse": "decode", "per_language": {"cs": {"max_compression": 3.0}}},
        "output": {"dir": str(tmp / "out")},
    }
    (tmp / "run.yaml").write_text(yaml.safe_dump(config))
    build_dataset(load_config(tmp / "run.yaml"))
    return tmp / "out"


def _stored_rows(out) -> pl.DataFrame:
    manifest = json.loads((out / MANIFEST).read_text())
    files = [out / f["path"] for f in manifest["files"] if f["split"] in ("kept", "rejected")]
    return pl.concat([pl.read_parquet(p) for p in files], how="diagonal_relaxed")


def _values(rows: pl.DataFrame, lang: str, column: str) -> np.ndarray:
    values = rows.filter(pl.col("lang") == lang)[column].drop_nulls().cast(pl.Float64).to_numpy()
    return values[np.isfinite(values)]


def test_each_cut_is_the_languages_own_percentile(output):
    rows = _stored_rows(output)
    assert set(rows["status"]) == {"kept", "rejected"}  # kept and rejected rows both count
    calibration = calibrate_output(output, noisy_share=0.1, min_rows=5, bound="none")
    knobs = {k.name: k for k in threshold_knobs()}
    assert {"min_bt_chrf", "min_script_share", "max_length_ratio", "max_repeat_run"} <= set(
        calibration.settings["knobs"])
    checked = 0
    for cut in calibration.cuts:
        knob = knobs[cut.knob]
        values = _values(rows, cut.lang, knob.column)
        assert cut.rows == len(values) >= 5 and cut.source == SOURCE_PERCENTILE
        expected = np.percentile(values, 10 if knob.higher_is_better else 90)  # numpy's linear interpolation
        assert cut.percentile == pytest.approx(expected, rel=1e-12, abs=1e-12)
        if knob.integer:  # a count: rounded to the value that rejects the same rows
            assert cut.value == (np.ceil(expected) if knob.higher_is_better else np.floor(expected))
        else:
            assert cut.value == cut.percentile
        failing = values < cut.value if knob.higher_is_better else values > cut.value
        assert cut.rejected == int(failing.sum())
        checked += 1
    assert checked >= 3 * 6  # every language, many signals
    de = calibration.rules.for_language("deu_Latn")
    de_cut = next(c for c in calibration.cuts if c.lang == "de" and c.knob == "min_bt_chrf")
    assert de.min_bt_chrf == de_cut.value
    assert calibration.rules.min_bt_chrf == 1.0  # the global values stay the output's


def test_the_global_value_bounds_a_lax_language():
    # de translates well, fr badly: fr's own 10th percentile (5.9) would keep its noise
    scores = pl.LazyFrame({"lang": ["de"] * 10 + ["fr"] * 10,
                           "score_bt_chrf": [50.0 + i for i in range(10)] + [5.0 + i for i in range(10)]})
    knob = next(k for k in threshold_knobs() if k.name == "min_bt_chrf")
    bounded = {c.lang: c for c in calibrate_knob(scores, knob, 30.0, 0.1, min_rows=10, bound="global")}
    assert (bounded["de"].value, bounded["de"].source) == (pytest.approx(50.9), SOURCE_PERCENTILE)
    assert (bounded["fr"].value, bounded["fr"].source) == (30.0, SOURCE_GLOBAL_BOUND)
    assert bounded["fr"].percentile == pytest.approx(5.9) and bounded["fr"].rejected == 10
    assert bounded["de"].rejected == 1  # 50.0 < 50.9
    plain = {c.lang: c for c in calibrate_knob(scores, knob, 30.0, 0.1, min_rows=10, bound="none")}
    assert plain["fr"].value == pytest.approx(5.9) and plain["fr"].rejected == 1
    few = calibrate_knob(scores, knob, 30.0, 0.1, min_rows=11, bound="global")
    assert {(c.source, c.value, c.rejected) for c in few} == {(SOURCE_TOO_FEW, None, 0), (SOURCE_TOO_FEW, None, 10)}


def test_languages_with_too_few_rows_keep_the_global_value(output):
    rows = _stored_rows(output)
    counts = {lang: len(_values(rows, lang, "score_script_share")) for lang in ("de", "fr", "cs")}
    assert len(set(counts.values())) > 1
    smallest = min(counts, key=counts.get)
    calibration = calibrate_output(output, noisy_share=0.1, min_rows=counts[smallest] + 1,
                                   knobs=["min_bt_chrf", "min_script_share", "max_compression"])
    by_key = {(c.lang, c.knob): c for c in calibration.cuts}
    few = by_key[(smallest, "min_script_share")]
    assert (few.source, few.value, few.percentile) == (SOURCE_TOO_FEW, None, None)
    assert "min_script_share" not in calibration.rules.per_language.get(smallest, {})
    rules = calibration.rules
    assert any(c.value is not None for c in by_key.values())
    for (lang, knob), cut in by_key.items():
        if cut.value is None:
            continue
        global_value = getattr(rules, knob)
        bound = max if knob.startswith("min_") else min  # never laxer than the global value
        assert cut.value == bound(cut.percentile, global_value)
        assert (knob in rules.per_language.get(lang, {})) == (cut.value != global_value)


def test_an_existing_override_is_kept_where_nothing_is_proposed(output):
    calibration = calibrate_output(output, noisy_share=0.1, min_rows=5, knobs=["min_bt_chrf"])
    assert calibration.rules.per_language["cs"]["max_compression"] == 3.0
    assert calibration.rules.for_language("ces_Latn").max_compression == 3.0


def test_the_written_rules_file_loads_as_the_proposal(output, tmp_path):
    calibration = calibrate_output(output, noisy_share=0.1, min_rows=5)
    path = write_rules(calibration, tmp_path / "rules.yaml")
    text = path.read_text()
    assert text.startswith("# Filter rules proposed by `mblip calibrate`") and "--rules" in text
    assert load_rules(path) == calibration.rules
    assert calibration.rules.per_language  # something was proposed


def test_bad_requests_name_the_problem(output, tmp_path):
    with pytest.raises(ValueError, match="noisy share 0.7"):
        calibrate_output(output, noisy_share=0.7)
    with pytest.raises(ValueError, match="knobs min_bleu: not thresholds"):
        calibrate_output(output, knobs=["min_bleu"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable manifest.json"):
        calibrate_output(tmp_path / "empty")


def test_a_rule_is_calibrated_on_the_rows_it_judges_and_stand_in_knobs_are_not_calibrated():
    from pipeline.filters.rules import UNSCORED_KNOBS, rule_scope

    assert not {k.name for k in threshold_knobs()} & set(UNSCORED_KNOBS)
    knob = next(k for k in threshold_knobs() if k.name == "max_length_ratio")
    # 100 long inputs with ratios around 1, and 100 short ones ("yes" -> "ja") whose ratios mean nothing
    rows = pl.LazyFrame({
        "lang": ["de"] * 200,
        "text_en": ["a man rides a horse"] * 100 + ["yes"] * 100,
        "sig_short_inflated": [None] * 100 + [False] * 100,
        "score_length_ratio": [1.0 + i / 1000 for i in range(100)] + [5.0] * 100,
    }, schema_overrides={"sig_short_inflated": pl.Boolean})
    [cut] = calibrate_knob(rows, knob, None, 0.05, 10, "none", rule_scope(knob.name))
    assert cut.rows == 100 and cut.percentile == pytest.approx(np.percentile([1.0 + i / 1000 for i in range(100)], 95))
    [unscoped] = calibrate_knob(rows, knob, None, 0.05, 10, "none")
    assert unscoped.rows == 200 and unscoped.percentile == 5.0

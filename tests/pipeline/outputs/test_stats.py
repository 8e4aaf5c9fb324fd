"""stats.json from the rows: the same rows give the same bytes, in whatever order or chunks they come."""

import json

import polars as pl

from pipeline.outputs.stats import compute_stats

# A float sum depends on its order: 1e16 + 1.0 - 1e16 is 0.0 from the left, 1.0 exactly.
SCORES = [1e16, 1.0, -1e16]


def _stats(order: list[int]) -> dict:
    rows = pl.DataFrame({
        "example_id": [f"e{i}" for i in order], "source": ["coco"] * 3, "task": ["caption"] * 3,
        "lang": ["de"] * 3, "status": ["kept"] * 3, "reject_reason": [None] * 3,
        "score_length_ratio": [SCORES[i] for i in order],
    }, schema_overrides={"reject_reason": pl.String})
    bad = pl.DataFrame(schema={"source": pl.String, "field": pl.String, "reason": pl.String})
    return compute_stats(rows.lazy(), bad, {"coco": {"rows": 3, "quarantined": 0}}, fan_out=1)


def test_score_means_are_exact_whatever_the_row_order():
    stats = [_stats(order) for order in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [2, 1, 0])]
    assert len({json.dumps(s, sort_keys=True) for s in stats}) == 1
    assert stats[0]["scores"]["score_length_ratio"]["de"]["mean"] == 1 / 3
    assert stats[0]["languages"]["de"]["mean_scores"]["score_length_ratio"] == 1 / 3


def test_score_histograms_share_their_bins_across_languages():
    from pipeline.outputs.stats import score_histograms

    rows = pl.LazyFrame({"lang": ["de"] * 6 + ["fr"] * 2,
                         "score_x": [0.0, 1.0, 2.0, 3.5, None, float("inf"), 4.0, 4.0]})
    hist = score_histograms(rows, ["score_x"], bins=4)["score_x"]
    assert hist["edges"] == [0.0, 1.0, 2.0, 3.0, 4.0]  # smallest to largest finite value of every language
    # nulls and infinities left out; the largest value falls in the last bin
    assert hist["languages"] == {"de": [1, 1, 1, 1], "fr": [0, 0, 0, 2]}
    assert score_histograms(pl.LazyFrame({"lang": ["de"], "score_x": [None]}, schema_overrides={
        "score_x": pl.Float64}), ["score_x"]) == {}

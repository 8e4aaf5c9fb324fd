import polars as pl
import pytest

from pipeline.assign import assign_languages, language_weights
from pipeline.languages import resolve_languages
from pipeline.schema import make_example_id


def _frame(ids):
    return pl.DataFrame({"example_id": [make_example_id("coco_captions", str(i)) for i in ids]})


def test_appending_data_never_moves_earlier_assignments():
    langs = resolve_languages(["de", "fr", "cs", "ru", "ja"])
    before = assign_languages(_frame(range(2000)), langs, seed=3)
    after = assign_languages(_frame(list(range(5000, 6000)) + list(range(2000))), langs, seed=3)
    merged = before.join(after, on="example_id", suffix="_after")
    assert merged.height == 2000
    assert (merged["lang"] == merged["lang_after"]).all()


def test_assignment_does_not_depend_on_row_order_but_on_seed():
    langs = resolve_languages(["de", "fr", "cs"])
    frame = _frame(range(500))
    a = assign_languages(frame, langs, seed=0)
    b = assign_languages(frame.reverse(), langs, seed=0).reverse()
    c = assign_languages(frame, langs, seed=1)
    assert a["lang"].to_list() == b["lang"].to_list()
    assert a["lang"].to_list() != c["lang"].to_list()


def test_proportions_follow_renormalised_mc4_shares():
    langs = resolve_languages(["de", "fr", "cs"])
    n = 30_000
    counts = assign_languages(_frame(range(n)), langs, seed=0)["lang"].value_counts()
    got = dict(zip(counts["lang"], counts["count"]))
    for lang, weight in zip(langs, language_weights(langs)):
        # binomial standard deviation is < 0.3% of n here; allow 1.5%
        assert abs(got[lang.code] / n - weight) < 0.015, (lang.code, got[lang.code] / n, weight)
    assert {r.nllb for r in langs} == set(assign_languages(_frame(range(100)), langs)["lang_nllb"])


def test_all_mode_fans_out_to_every_language():
    langs = resolve_languages(["de", "fr"])
    out = assign_languages(_frame(range(3)), langs, mode="all")
    assert out.height == 6
    assert sorted(out["lang"].to_list()) == ["de"] * 3 + ["fr"] * 3


def test_unknown_mode_and_empty_languages_are_errors():
    with pytest.raises(ValueError, match="assignment mode"):
        assign_languages(_frame(range(3)), resolve_languages(["de"]), mode="shuffle")
    with pytest.raises(ValueError, match="no target languages"):
        assign_languages(_frame(range(3)), ())

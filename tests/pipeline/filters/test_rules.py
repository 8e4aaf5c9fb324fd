import polars as pl
import pytest

from pipeline.filters import rules as rules_module
from pipeline.filters.rules import FilterRules, decide, load_rules


def _frame(**overrides) -> pl.DataFrame:
    row = {
        "text_en": "A man sleeping on a couch.",
        "text_tgt": "Ein Mann schläft auf einem Sofa.",
        "lang_nllb": "deu_Latn",
        "sig_input_error": None,
        "score_script_share": 1.0,
        "score_copy_overlap": 0.0,
        "score_repeat_run": 1,
        "score_repeat_ngram": 0.0,
        "score_compression": 1.0,
        "score_char_repeat": 1,
        "score_en_leak": 0.0,
        "score_length_ratio": 1.0,
        "sig_short_inflated": None,
        "sig_numbers_ok": None,
        "score_langid_rank": 1,
        "sig_answer_issue": None,
        "score_bt_chrf": None,
        "score_fwd_logprob": None,
        "score_fwd_margin": None,
        "score_sentence_margin": None,
        "score_bt_logprob": None,
        "score_dual_xent": None,
    }
    row.update(overrides)
    schema = {k: pl.Float64 if k.startswith("score_") else pl.String for k in row}
    schema.update({"score_repeat_run": pl.Int64, "score_langid_rank": pl.Int64, "score_char_repeat": pl.Int64,
                   "sig_short_inflated": pl.Boolean, "sig_numbers_ok": pl.Boolean})
    return pl.DataFrame([row], schema=schema)


def _decide(rules=FilterRules(), **overrides):
    out = decide(_frame(**overrides), rules).row(0, named=True)
    return out["status"], out["reject_reason"]


def test_good_row_is_kept_and_null_signals_do_not_fail():
    assert _decide() == ("kept", None)


RULE_CASES = [
    ({"sig_input_error": "empty_text_tgt"}, "input:empty_text_tgt"),
    ({"score_script_share": 0.1}, "wrong_script"),
    ({"score_copy_overlap": 0.9}, "copy_of_source"),
    ({"score_repeat_run": 5}, "repetition"),
    ({"score_char_repeat": 4}, "stutter"),  # "zezezezeigt"
    ({"score_en_leak": 0.5}, "english_leak"),  # half the words left in English
    ({"score_length_ratio": 0.2}, "too_short"),
    ({"score_length_ratio": 3.0}, "too_long"),
    ({"sig_short_inflated": True}, "inflated_short_input"),
    ({"sig_numbers_ok": False}, "numbers_lost"),
    ({"score_langid_rank": 20}, "wrong_language"),
    ({"sig_answer_issue": "numbers_lost"}, "answer:numbers_lost"),
    ({"score_bt_chrf": 5.0}, "low_bt_chrf"),
    ({"score_bt_logprob": -9.0}, "low_bt_score"),  # on by default (-3.5)
]
# Rules that are off by default: the rules that turn them on, a failing row, and its reason.
MODEL_RULE_CASES = [
    (FilterRules(min_fwd_logprob=-5.0), {"score_fwd_logprob": -9.0}, "low_fwd_score"),
    (FilterRules(min_fwd_margin=0.0), {"score_fwd_margin": -0.5}, "source_ignored"),
    (FilterRules(max_dual_xent=4.0), {"score_dual_xent": 9.0}, "high_dual_xent"),
    (FilterRules(min_sentence_margin=0.0), {"score_sentence_margin": -0.5}, "extra_sentence"),
]


@pytest.mark.parametrize(("overrides", "reason"), RULE_CASES)
def test_each_rule_names_its_reason(overrides, reason):
    assert _decide(**overrides) == ("rejected", reason)


@pytest.mark.parametrize(("rules", "overrides", "reason"), MODEL_RULE_CASES)
def test_model_rules_are_off_by_default_and_name_their_reason(rules, overrides, reason):
    assert _decide(**overrides) == ("kept", None)
    assert _decide(rules, **overrides) == ("rejected", reason)


def test_every_reason_has_a_case_above():
    """A new rule's reason without a test case here fails this test."""
    reasons = {v for k, v in vars(rules_module).items() if k.startswith("REASON_") and isinstance(v, str)}
    tested = {r.split(":")[0] for _, r in RULE_CASES} | {r for _, _, r in MODEL_RULE_CASES}
    assert reasons and reasons - tested == set()


def test_the_reverse_score_rule_is_off_when_its_threshold_is():
    assert _decide(FilterRules(min_bt_logprob=None), score_bt_logprob=-9.0) == ("kept", None)
    assert _decide(score_bt_logprob=-3.0) == ("kept", None)  # above the default threshold


def test_first_failing_rule_wins():
    assert _decide(score_script_share=0.1, score_bt_chrf=5.0, sig_numbers_ok=False)[1] == "wrong_script"


def test_rules_that_are_off_or_do_not_apply():
    assert _decide(FilterRules(min_bt_chrf=None), score_bt_chrf=5.0) == ("kept", None)
    # Copy check skips short sources ("pizza" -> "pizza"); language id skips texts with few letters.
    assert _decide(score_copy_overlap=1.0, text_en="pizza", text_tgt="Pizza")[0] == "kept"
    assert _decide(score_langid_rank=30, text_tgt="Ja.")[0] == "kept"
    assert _decide(FilterRules(min_fwd_logprob=-2.0), score_fwd_logprob=-3.0)[1] == "low_fwd_score"


def test_stutter_and_leak_rules_keep_ordinary_values_and_turn_off():
    assert _decide(score_char_repeat=2) == ("kept", None)  # "Mississippi", "Couscous"
    assert _decide(FilterRules(max_char_repeat=None), score_char_repeat=7) == ("kept", None)
    assert _decide(score_en_leak=0.2) == ("kept", None)  # a borrowing or two
    assert _decide(FilterRules(max_en_leak=None), score_en_leak=0.9) == ("kept", None)


def test_the_length_bound_for_rows_no_model_scored_applies_where_the_ratio_was_measured():
    # 1.8 x the expected length: a run-on. Without a model score (nothing else would notice) it is too
    # long in German, whose ratio was measured; with one the model's sentence margin decides; in a
    # language with only its script's ratio the general bound applies.
    assert _decide(score_length_ratio=1.8) == ("rejected", "too_long")
    assert _decide(score_length_ratio=1.8, score_fwd_logprob=-1.0) == ("kept", None)
    assert _decide(score_length_ratio=1.8, lang_nllb="spa_Latn") == ("kept", None)
    assert _decide(FilterRules(max_length_ratio_unscored=None), score_length_ratio=1.8) == ("kept", None)
    off = FilterRules(per_language={"de": {"max_length_ratio_unscored": None}})
    assert _decide(off, score_length_ratio=1.8) == ("kept", None)


def test_as_scored_turns_the_unscored_bounds_off_everywhere():
    from pipeline.filters.rules import UNSCORED_KNOBS, as_scored

    rules = as_scored(FilterRules(per_language={"de": {"max_length_ratio_unscored": 1.2, "min_bt_chrf": 9.0}}))
    assert all(getattr(rules, k) is None for k in UNSCORED_KNOBS)
    assert rules.per_language == {"de": {"min_bt_chrf": 9.0}}
    assert _decide(rules, score_length_ratio=1.8) == ("kept", None)


def test_per_language_overrides():
    rules = FilterRules(per_language={"de": {"min_bt_chrf": 10.0}, "fra_Latn": {"min_script_share": None}})
    assert _decide(rules, score_bt_chrf=20.0)[0] == "kept"
    assert _decide(rules, score_bt_chrf=20.0, lang_nllb="ces_Latn")[1] == "low_bt_chrf"
    assert _decide(rules, score_script_share=0.1, lang_nllb="fra_Latn")[0] == "kept"
    assert rules.for_language("deu_Latn").min_bt_chrf == 10.0


def test_upstream_rejection_keeps_its_reason():
    frame = _frame(score_bt_chrf=5.0).with_columns(status=pl.lit("rejected"), reject_reason=pl.lit("quarantine"))
    row = decide(frame, FilterRules()).row(0, named=True)
    assert (row["status"], row["reject_reason"]) == ("rejected", "quarantine")


def test_config_errors_name_the_knob(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("min_bt_chrff: 3\n")
    with pytest.raises(ValueError, match="min_bt_chrff"):
        load_rules(path)
    path.write_text("per_language:\n  xx: {min_bt_chrf: 3}\n")
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        load_rules(path)
    path.write_text("per_language:\n  de: {min_bleu: 3}\n")
    with pytest.raises(ValueError, match="min_bleu"):
        load_rules(path)
    path.write_text("min_length_ratio: 0.4\nper_language:\n  cs: {min_length_ratio: 0.3}\n")
    rules = load_rules(path)
    assert rules.min_length_ratio == 0.4 and rules.for_language("ces_Latn").min_length_ratio == 0.3


def test_documented_config_is_the_defaults():
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "configs" / "filter.yaml"
    assert load_rules(path) == FilterRules()


def test_a_per_language_value_is_checked_like_the_global_knob(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("per_language:\n  de: {min_bt_chrf: 500, max_repeat_run: many}\n")
    with pytest.raises(ValueError) as error:
        load_rules(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: invalid filter rules: ")
    assert "per_language.de.min_bt_chrf: Input should be less than or equal to 100" in message
    assert "per_language.de.max_repeat_run: Input should be a valid integer" in message
    with pytest.raises(FileNotFoundError, match="no such filter rules file"):
        load_rules(tmp_path / "missing.yaml")

import polars as pl
import pytest

from pipeline.filters.quality import SIGNAL_SCHEMA, apply_quality_filter
from pipeline.filters.rules import FilterRules
from pipeline.schema import TARGET_SCHEMA

EN = "A man is sleeping in a green room on a couch."
DE = "Ein Mann schläft in einem grünen Raum auf einem Sofa."
RUN_ON = DE + " Zwei Hunde rennen über eine Wiese im Park."
CASES = [
    # (text_en, text_tgt, lang_nllb, expected reason)
    (EN, DE, "deu_Latn", None),
    (EN, EN, "deu_Latn", "copy_of_source"),
    (EN, "Ein Mann schläft in einem grünen Raum Raum Raum Raum Raum Raum", "deu_Latn", "repetition"),
    (EN, "Un homme dort dans une chambre verte sur un canapé.", "deu_Latn", "wrong_language"),
    (EN, "Еин Манн шлäфт ин еинем грüнен Раум ауф еинем Софа.", "deu_Latn", "wrong_script"),
    (EN, "Ein Mann schläft", "deu_Latn", "too_short"),
    ("Two men are sleeping on a couch.", "Drei Männer schlafen auf einem Sofa.", "deu_Latn", "numbers_lost"),
    ("yes", "Ja, das ist auf dem Bild ganz sicher richtig.", "deu_Latn", "inflated_short_input"),
    (EN, "Мужчина спит на диване в зелёной комнате.", "rus_Cyrl", None),
    (EN, "一个男人在绿色房间的沙发上睡觉。", "zho_Hans", None),
    (EN, "", "deu_Latn", "input:empty_text_tgt"),
    (None, DE, "deu_Latn", "input:missing_text_en"),
    (EN, DE, "xxx_Latn", "input:unknown_lang"),
    (EN, DE, None, "input:missing_lang"),
    (EN, "Ein Mann schläft in einem grünen Rararararaum auf einem Sofa.", "deu_Latn", "stutter"),
    (EN, "Ein Mann schläft in einem grünen Raum on a couch.", "deu_Latn", "english_leak"),
    # A run-on: the translation and a second sentence; no model scored it, so its length alone tells.
    (EN, RUN_ON, "deu_Latn", "too_long"),
]


def _frame(cases=CASES) -> pl.DataFrame:
    return pl.DataFrame(
        [c[:3] for c in cases], schema={"text_en": pl.String, "text_tgt": pl.String, "lang_nllb": pl.String},
        orient="row",
    )


def test_each_failure_mode_gets_its_reason_and_good_rows_are_kept():
    out = apply_quality_filter(_frame(), None, FilterRules())
    assert out.height == len(CASES)
    assert out["text_tgt"].to_list() == [c[1] for c in CASES]  # same rows, same order
    assert out["reject_reason"].to_list() == [c[3] for c in CASES]
    assert out["status"].to_list() == ["kept" if c[3] is None else "rejected" for c in CASES]
    # Without a translator the model signals are null and their rules do not apply.
    assert out["score_bt_chrf"].is_null().all() and out["score_fwd_logprob"].is_null().all()
    # Bad rows keep null signals rather than made-up ones.
    bad = out.filter(pl.col("sig_input_error").is_not_null())
    assert bad.height == 4 and bad["score_script_share"].is_null().all()


def test_signal_columns_are_in_the_row_schema():
    out = apply_quality_filter(_frame(CASES[:1]), None)
    for name, dtype in SIGNAL_SCHEMA.items():
        assert name in TARGET_SCHEMA and TARGET_SCHEMA[name] == dtype
        assert out.schema[name] == dtype


def test_answers_of_vqa_rows_are_checked():
    frame = pl.DataFrame(
        {
            "text_en": ["How many dogs are there?"] * 3,
            "text_tgt": ["Wie viele Hunde sind da?"] * 3,
            "lang_nllb": ["deu_Latn"] * 3,
            "answer_en": ["2", "2", "yes"],
            "answer_tgt": ["zwei", "drei", "Ja, auf dem Bild sind ganz sicher Hunde."],
        }
    )
    out = apply_quality_filter(frame, None)
    assert out["reject_reason"].to_list() == [None, "answer:numbers_lost", "answer:inflated"]


def test_rows_rejected_upstream_keep_their_reason():
    frame = _frame(CASES[:2]).with_columns(status=pl.lit("rejected"), reject_reason=pl.lit("translation_failed"))
    out = apply_quality_filter(frame, None)
    assert out["reject_reason"].to_list() == ["translation_failed"] * 2


def test_missing_column_names_it():
    with pytest.raises(ValueError, match="text_tgt"):
        apply_quality_filter(pl.DataFrame({"text_en": ["a"], "lang_nllb": ["deu_Latn"]}), None)


def test_with_a_translator_back_translation_and_forward_score_are_filled(tiny_model_dir):
    from pipeline.nllb.engine import load_translator

    translator = load_translator(tiny_model_dir)
    frame = _frame()
    out = apply_quality_filter(frame, translator, FilterRules(), reverse="decode")
    assert out["text_tgt"].to_list() == frame["text_tgt"].to_list()
    valid = out["sig_input_error"].is_null()
    scored = out.filter(valid)
    assert scored["score_bt_chrf"].is_not_null().all() and scored["backtranslation_en"].is_not_null().all()
    assert ((scored["score_bt_chrf"] >= 0) & (scored["score_bt_chrf"] <= 100)).all()
    assert scored["score_fwd_logprob"].is_not_null().all() and (scored["score_fwd_logprob"] <= 0).all()
    # The margin needs other sources in the batch: rows sharing EN with all contrasts get none.
    has_other = scored["text_en"] != EN
    assert scored.filter(has_other)["score_fwd_margin"].is_not_null().all()
    assert out.filter(~valid)["score_bt_chrf"].is_null().all()
    # A random-weight model back-translates noise: the good rows now fail on chrF++, while heuristic
    # reasons still come first.
    # The run-on's length bound is for rows no model scored: this one the model checks.
    assert out["reject_reason"].to_list() == ["low_bt_chrf" if c[1] == RUN_ON else c[3] or "low_bt_chrf"
                                               for c in CASES]


def test_model_signals_only_for_languages_the_model_covers(tiny_model_dir):
    from pipeline.nllb.engine import load_translator

    frame = _frame([CASES[0], CASES[8]])
    out = apply_quality_filter(frame, load_translator(tiny_model_dir), model_languages=frozenset({"deu_Latn"}),
                               reverse="decode")
    assert out["score_bt_chrf"].is_null().to_list() == [False, True]
    assert out["reject_reason"].to_list() == ["low_bt_chrf", None]


def test_empty_batches_and_all_null_columns():
    empty = pl.DataFrame(schema={"text_en": pl.String, "text_tgt": pl.String, "lang_nllb": pl.String})
    assert apply_quality_filter(empty).height == 0
    out = apply_quality_filter(
        pl.DataFrame({"text_en": ["A man on a couch."], "text_tgt": [None], "lang_nllb": [None]})
    )
    assert out["reject_reason"].to_list() == ["input:missing_lang"]


def test_back_translating_only_heuristic_survivors_gives_the_same_decisions(tiny_model_dir):
    from pipeline.nllb.engine import load_translator

    translator = load_translator(tiny_model_dir)
    rules = FilterRules(min_bt_chrf=1.0)
    full = apply_quality_filter(_frame(), translator, rules, reverse="decode")
    lean = apply_quality_filter(_frame(), translator, rules, score_rejected=False, reverse="decode")
    assert lean["reject_reason"].to_list() == full["reject_reason"].to_list()
    heuristic_reject = full["reject_reason"].is_in(["copy_of_source", "repetition", "wrong_script"])
    assert lean.filter(heuristic_reject)["score_bt_chrf"].is_null().all()
    assert full.filter(heuristic_reject)["score_bt_chrf"].is_not_null().all()


def test_source_margin_contrasts_sources_of_a_fixed_pool(tiny_model_dir):
    from pipeline.filters.contrast import CONTRAST_SOURCES, contrast_pool, contrast_sources
    from pipeline.filters.quality import _source_margin
    from pipeline.nllb.engine import load_translator
    from pipeline.translate import as_caching

    translator = load_translator(tiny_model_dir)
    srcs = ["A red circle.", "Is the triangle blue?", "Two dogs run across 3 fields.", "yes", "What shape is shown?"]
    tgts = ["Ein roter Kreis.", "Ist das Dreieck blau?", "Zwei Hunde laufen über 3 Felder.", "ja", "Welche Form?"]
    own = translator.score(srcs, tgts, "eng_Latn", "deu_Latn")
    margins = _source_margin(as_caching(translator), srcs, tgts, own, ["deu_Latn"] * len(srcs))
    others = contrast_sources(srcs[0])
    assert len(set(others)) == CONTRAST_SOURCES and srcs[0] not in others
    assert set(others) <= set(contrast_pool(questions=False))
    assert set(contrast_sources(srcs[1])) <= set(contrast_pool(questions=True))  # a question against questions
    contrast = translator.score(others, [tgts[0]] * len(others), "eng_Latn", "deu_Latn")
    assert margins[0] == pytest.approx(own[0] - max(contrast), abs=1e-4)
    # One row alone gets the margin it gets among others: the contrasts do not come from the batch.
    alone = _source_margin(as_caching(translator), srcs[:1], tgts[:1], own[:1], ["deu_Latn"])
    assert alone == [pytest.approx(margins[0], abs=1e-6)]


def test_sentence_margin_scores_each_sentence_of_a_multi_sentence_output(tiny_model_dir):
    from pipeline.filters.quality import _sentence_margin, _source_margin
    from pipeline.nllb.engine import load_translator
    from pipeline.translate import as_caching

    translator = as_caching(load_translator(tiny_model_dir))
    srcs = ["A red circle.", "A red circle."]
    tgts = ["Ein roter Kreis.", "Ein roter Kreis. Zwei Hunde rennen."]
    single, run_on = _sentence_margin(translator, srcs, tgts, ["deu_Latn"] * 2)
    assert single is None  # one sentence: the whole-output margin covers it
    sentences = ["Ein roter Kreis.", "Zwei Hunde rennen."]
    own = translator.score(srcs, sentences, "eng_Latn", "deu_Latn")
    each = _source_margin(translator, srcs, sentences, own, ["deu_Latn"] * 2)
    assert run_on == pytest.approx(min(each), abs=1e-5)

    out = apply_quality_filter(_frame([(srcs[1], tgts[1], "deu_Latn", None)]), translator.engine,
                               FilterRules(min_sentence_margin=min(each) + 0.01), reverse="score")
    assert out["score_sentence_margin"].to_list() == [pytest.approx(run_on, abs=1e-5)]
    assert out["reject_reason"].to_list() == ["extra_sentence"]


def test_a_pool_entry_never_contrasts_with_itself():
    from pipeline.filters.contrast import contrast_pool, contrast_sources

    for source in contrast_pool(questions=False)[:50] + contrast_pool(questions=True)[:50]:
        others = contrast_sources(source)
        assert source not in others and len(set(others)) == len(others)

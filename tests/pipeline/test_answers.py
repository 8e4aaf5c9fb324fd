"""VQA answers as a per-language vocabulary: mBLIP's rule (seen >= 15 times in the source, no digits, longer
than one character), the round trip, yes/no pairs, and the knobs that restore the reference's matching."""

import polars as pl
import pytest

from pipeline.answers import (
    AnswerSettings, accept_answers, answer_key, answer_kind, frequent_answers, normalize_answer, translate_answers,
)
from pipeline.nllb.engine import EngineSettings, Translation, load_translator
from pipeline.translate import CachingTranslator, TranslationStats


class DictEngine:
    """A stand-in MT system with known outputs, so the acceptance logic can be checked exactly."""

    def __init__(self, table):
        self.table = table
        self.sent = []

    def translate(self, texts, src_lang, tgt_lang, **options):
        targets = [tgt_lang] * len(texts) if isinstance(tgt_lang, str) else tgt_lang
        self.sent += list(zip(texts, targets))
        self.calls = getattr(self, "calls", 0) + 1
        return [Translation(text=self.table.get((t, g), f"?{t}?")) for t, g in zip(texts, targets)]

    def cache_key(self):
        return "dict"


DE, FR, EN = "deu_Latn", "fra_Latn", "eng_Latn"
TABLE = {
    ("red", DE): "rot", ("rot", EN): "red",
    ("yes", DE): "ja", ("ja", EN): "yes",
    ("no", DE): "nein", ("nein", EN): "No.",  # punctuation and case are normalised away
    ("left", DE): "links", ("links", EN): "on the left side",  # round trip fails
    ("yes", FR): "oui", ("oui", EN): "yes",
    ("no", FR): "non", ("non", EN): "not",  # "no" fails, so "yes" must stay English too
}


def test_answer_kinds_and_normalisation():
    assert [answer_kind(a) for a in ["2", "10", "3:30", "1.5", "yes", "No", "two", "red"]] == \
        ["number", "number", "number", "number", "yes_no", "yes_no", "other", "other"]
    assert normalize_answer("The  Red car!") == "red car"


def test_vocabulary_translates_each_answer_once_and_applies_the_round_trip_rule():
    engine = DictEngine(TABLE)
    stats = TranslationStats()
    answers = ["red", "2", "yes", "no", "left", "red", "red", "10"]
    accepted = accept_answers(CachingTranslator(engine), [(a, DE) for a in answers], stats=stats)
    assert accepted == {(a, DE): t for a, t in
                        {"red": "rot", "2": None, "10": None, "yes": "ja", "no": "nein", "left": None}.items()}
    forward = [t for t, lang in engine.sent if lang == DE]
    assert sorted(forward) == ["left", "no", "red", "yes"]  # numbers never reach the model, repeats once
    assert stats.requested == 6 + 4 and stats.distinct == 4 + 4  # forward (with repeats) + back-translations


def test_yes_no_are_kept_or_dropped_together():
    accepted = accept_answers(CachingTranslator(DictEngine(TABLE)), [("yes", FR), ("no", FR), ("3", FR)])
    assert accepted == {("yes", FR): None, ("no", FR): None, ("3", FR): None}
    alone = accept_answers(CachingTranslator(DictEngine(TABLE)), [("yes", FR), ("no", FR)],
                           settings=AnswerSettings(pair_yes_no=False))  # the reference: each on its own
    assert alone == {("yes", FR): "oui", ("no", FR): None}


def test_translate_answers_columns():
    frame = pl.DataFrame({
        "task": ["vqa", "vqa", "vqa", "vqa", "caption", "vqa"],
        "lang_nllb": [DE, DE, DE, DE, DE, EN],
        "answer_en": ["red", "2", "left", "yes", None, "left"],
    })
    out = translate_answers(frame, CachingTranslator(DictEngine(TABLE)))
    assert out["answer_tgt"].to_list() == ["rot", "2", "left", "ja", None, "left"]
    assert out["answer_translated"].to_list() == [True, False, False, True, None, True]  # digits stay English


def test_all_languages_in_one_forward_and_one_backward_call():
    engine = DictEngine(TABLE)
    frame = pl.DataFrame({
        "task": ["vqa"] * 6, "lang_nllb": [DE, FR, DE, FR, DE, FR], "answer_en": ["yes", "yes", "no", "no", "red", "3"],
    })
    out = translate_answers(frame, CachingTranslator(engine))
    assert engine.calls == 2
    assert out["answer_tgt"].to_list() == ["ja", "yes", "nein", "no", "rot", "3"]  # French yes/no failed as a pair
    assert out["answer_translated"].to_list() == [True, False, True, False, True, False]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_translator(tiny_model_dir, EngineSettings(compute_type="int8"))


def test_random_model_answers_fall_back_to_english(engine):
    frame = pl.DataFrame({"task": ["vqa"] * 4, "lang_nllb": [DE] * 4, "answer_en": ["red", "2", "yes", "circle"]})
    out = translate_answers(frame, engine)
    # noise never back-translates to the English answer: the English answer stays, and says so
    assert out["answer_tgt"].to_list() == ["red", "2", "yes", "circle"]
    assert out["answer_translated"].to_list() == [False, False, False, False]


def _chunks(tmp_path, answers_by_source):
    out = {}
    for source, answers in answers_by_source.items():
        path = tmp_path / f"{source}.parquet"
        pl.DataFrame({"task": ["vqa"] * len(answers), "answer_en": answers}).write_parquet(path)
        out[source] = [str(path)]
    return out


def test_only_answers_seen_min_count_times_without_digits_longer_than_one_character(tmp_path):
    table = {**TABLE, ("blue", DE): "blau", ("blau", EN): "blue", ("x", DE): "ix", ("ix", EN): "x",
             ("3 dogs", DE): "3 Hunde", ("3 Hunde", EN): "3 dogs"}
    source = ["red"] * 15 + ["blue"] * 14 + ["x"] * 20 + ["3 dogs"] * 20 + ["yes"] * 30 + ["no"] * 30
    frequent = frequent_answers(_chunks(tmp_path, {"vqa": source, "other": ["blue"] * 15}), 15)
    assert frequent == {"vqa": frozenset({"red", "x", "3 dogs", "yes", "no"}), "other": frozenset({"blue"})}
    engine = DictEngine(table)
    asked = ["red", "blue", "x", "3 dogs", "yes", "no"]
    frame = pl.DataFrame({"task": ["vqa"] * 7, "source": ["vqa"] * 6 + ["other"], "lang_nllb": [DE] * 7,
                          "answer_en": asked + ["blue"]})
    out = translate_answers(frame, CachingTranslator(engine), settings=AnswerSettings(frequent=frequent))
    # blue: 14 times in its source; x: one character; "3 dogs": a digit. In "other" blue is frequent.
    assert out["answer_tgt"].to_list() == ["rot", "blue", "x", "3 dogs", "ja", "nein", "blau"]
    assert out["answer_translated"].to_list() == [True, False, False, False, True, True, True]
    assert {t for t, _ in engine.sent} == {"red", "yes", "no", "blue", "rot", "ja", "nein", "blau"}  # nothing else
    off = translate_answers(frame, CachingTranslator(DictEngine(table)),
                            settings=AnswerSettings(min_count=0, frequent=frequent))
    assert off["answer_translated"].to_list() == [True, True, False, False, True, True, True]


def test_exact_match_is_the_references_round_trip():
    table = {**TABLE, ("dog", DE): "Hund", ("Hund", EN): "The dog."}
    pairs = [("dog", DE), ("no", DE), ("yes", DE)]
    normalized = accept_answers(CachingTranslator(DictEngine(table)), pairs)
    assert normalized == {("dog", DE): "Hund", ("no", DE): "nein", ("yes", DE): "ja"}
    exact = accept_answers(CachingTranslator(DictEngine(table)), pairs,
                           settings=AnswerSettings(match="exact", pair_yes_no=False))
    assert exact == {("dog", DE): None, ("no", DE): None, ("yes", DE): "ja"}  # "No." is not "no" up to case


def test_answer_key_follows_the_rule_and_the_counts():
    base = answer_key("k", AnswerSettings())
    assert base == "k"  # defaults, nothing counted: keys of earlier outputs stand
    counted = answer_key("k", AnswerSettings(frequent={"vqa": frozenset({"red"})}))
    assert counted != "k" and counted == answer_key("k", AnswerSettings(frequent={"vqa": frozenset({"red"})}))
    assert counted != answer_key("k", AnswerSettings(frequent={"vqa": frozenset({"red", "blue"})}))
    assert counted != answer_key("k", AnswerSettings(min_count=5, frequent={"vqa": frozenset({"red"})}))


def test_the_chunk_stage_applies_the_run_counts_and_the_prompt_says_english(tmp_path):
    from pipeline.chunks import ChunkJob, run_keys
    from pipeline.config import PipelineConfig
    from pipeline.languages import resolve_languages
    from pipeline.process import ProcessSettings, process_rows
    from pipeline.schema import SOURCE_SCHEMA, conform, make_example_id

    rows = conform(pl.DataFrame([
        {"example_id": make_example_id("vqa", f"q{i}"), "source": "vqa", "source_record_id": f"q{i}",
         "source_file": "f", "task": "vqa", "image_id": "1", "image_path": "a.jpg", "text_en": "What colour?",
         "answer_en": answer, "answers_en": [answer]} for i, answer in enumerate(["red", "blue"] * 20)]), SOURCE_SCHEMA)
    frequent = frequent_answers(_chunks(tmp_path, {"vqa": ["red"] * 15 + ["blue"] * 3}), 15)
    table = {**TABLE, ("blue", DE): "blau", ("blau", EN): "blue"}
    settings = ProcessSettings(resolve_languages(["de"]), backtranslate=False,
                               answers=AnswerSettings(frequent=frequent))
    out = process_rows(rows, settings, CachingTranslator(DictEngine(table)))
    red, blue = out.filter(pl.col("answer_en") == "red"), out.filter(pl.col("answer_en") == "blue")
    assert set(red["target"]) == {"rot"} and red["prompt"].str.contains("German").all()
    assert set(blue["target"]) == {"blue"} and blue["prompt"].str.contains("English").all()  # rare: stays English

    config = PipelineConfig.model_validate({"sources": [{"type": "imagenet", "images": str(tmp_path),
                                                         "classes": str(tmp_path / "c.json")}],
                                            "answers": {"min_count": 3, "match": "exact"}})
    answers = config.answers.settings(frequent)
    job = ChunkJob.from_config(config, "/models/m", {}, answers=answers)
    assert job.process.answers == AnswerSettings(min_count=3, match="exact", frequent=frequent)
    keys = [run_keys(config, {"model_id": "m"}, config.translation.engine_settings(), {}, a).translation
            for a in (answers, config.answers.settings({"vqa": frozenset({"red", "blue"})}))]
    assert keys[0] != keys[1]  # counts that move an answer across min_count reprocess the chunks

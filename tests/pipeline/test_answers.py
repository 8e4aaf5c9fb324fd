"""VQA answers as a per-language vocabulary: numbers kept as digits, the round-trip rule, yes/no pairs."""

import polars as pl
import pytest

from pipeline.answers import accept_answers, answer_kind, normalize_answer, translate_answers
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
                        {"red": "rot", "2": "2", "10": "10", "yes": "ja", "no": "nein", "left": None}.items()}
    forward = [t for t, lang in engine.sent if lang == DE]
    assert sorted(forward) == ["left", "no", "red", "yes"]  # numbers never reach the model, repeats once
    assert stats.requested == 6 + 4 and stats.distinct == 4 + 4  # forward (with repeats) + back-translations


def test_yes_no_are_kept_or_dropped_together():
    accepted = accept_answers(CachingTranslator(DictEngine(TABLE)), [("yes", FR), ("no", FR), ("3", FR)])
    assert accepted == {("yes", FR): None, ("no", FR): None, ("3", FR): "3"}


def test_translate_answers_columns():
    frame = pl.DataFrame({
        "task": ["vqa", "vqa", "vqa", "vqa", "caption", "vqa"],
        "lang_nllb": [DE, DE, DE, DE, DE, EN],
        "answer_en": ["red", "2", "left", "yes", None, "left"],
    })
    out = translate_answers(frame, CachingTranslator(DictEngine(TABLE)))
    assert out["answer_tgt"].to_list() == ["rot", "2", "left", "ja", None, "left"]
    assert out["answer_translated"].to_list() == [True, True, False, True, None, True]


def test_all_languages_in_one_forward_and_one_backward_call():
    engine = DictEngine(TABLE)
    frame = pl.DataFrame({
        "task": ["vqa"] * 6, "lang_nllb": [DE, FR, DE, FR, DE, FR], "answer_en": ["yes", "yes", "no", "no", "red", "3"],
    })
    out = translate_answers(frame, CachingTranslator(engine))
    assert engine.calls == 2
    assert out["answer_tgt"].to_list() == ["ja", "yes", "nein", "no", "rot", "3"]  # French yes/no failed as a pair
    assert out["answer_translated"].to_list() == [True, False, True, False, True, True]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_translator(tiny_model_dir, EngineSettings(compute_type="int8"))


def test_random_model_answers_fall_back_to_english_except_numbers(engine):
    frame = pl.DataFrame({"task": ["vqa"] * 4, "lang_nllb": [DE] * 4, "answer_en": ["red", "2", "yes", "circle"]})
    out = translate_answers(frame, engine)
    # noise never back-translates to the English answer: the English answer stays, and says so
    assert out["answer_tgt"].to_list() == ["red", "2", "yes", "circle"]
    assert out["answer_translated"].to_list() == [False, True, False, False]

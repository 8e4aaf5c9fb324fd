"""Instruction templates: translated once per language, slots kept out of the model, the paper's drop
rule, and the ``prompt`` column (English-answer variant when the answer stayed English)."""

import polars as pl
import pytest

from pipeline.nllb.engine import EngineSettings, Translation, load_translator
from pipeline.templates import (
    DROP_CONTAINS_ENGLISH, ENGLISH_ONLY_TASKS, MATCH_TEMPLATES, TASK_VQA_ENGLISH_ANSWER, TEMPLATES, add_prompts,
    pick_match_template, split_template, templates_for, translate_templates,
)
from pipeline.translate import CachingTranslator

DE = "deu_Latn"


class DictEngine:
    """Known translations; anything else comes back as the English text in brackets (a failed copy)."""

    def __init__(self, table):
        self.table = table
        self.sent = []

    def translate(self, texts, src_lang, tgt_lang, **options):
        self.sent += list(texts)
        return [Translation(text=self.table.get(t, f"[{t}]")) for t in texts]

    def cache_key(self):
        return f"dict-{id(self)}"


TABLE = {
    "Caption the image in German.": "Beschrifte das Bild auf Deutsch.",
    "Answer in German:": "Antworte auf Deutsch:",
    "Answer in English:": "Antworte auf Englisch:",
    "Question:": "Frage:",
    "Short answer in German:": "Short answer in German:",  # copied: must be dropped
}


def test_split_template_keeps_slots_out():
    assert split_template("Question: {question} Answer in {lang}:") == ["Question:", "{question}", "Answer in {lang}:"]
    assert split_template("{question} Short answer:") == ["{question}", "Short answer:"]


def test_translate_templates_fills_language_drops_english_and_counts():
    engine = DictEngine(TABLE)
    s = translate_templates(CachingTranslator(engine), "de")
    assert "Caption the image in German." in engine.sent  # the language name is filled before translation
    assert not [t for t in engine.sent if "{" in t]  # slots never reach the model
    assert s.templates["caption"] == ("Beschrifte das Bild auf Deutsch.",)
    assert s.templates["vqa"] == ("Antworte auf Deutsch: {question}", "Frage: {question} Antworte auf Deutsch:")
    assert s.templates[TASK_VQA_ENGLISH_ANSWER] == ("Antworte auf Englisch: {question}", "Frage: {question} Antworte auf Englisch:")
    total = sum(len(v) for t, v in TEMPLATES.items() if t not in ENGLISH_ONLY_TASKS)
    kept = sum(len(v) for v in s.templates.values())
    assert s.dropped == {DROP_CONTAINS_ENGLISH: total - kept}
    assert "vqg" not in s.templates  # every vqg translation still contained its English: all dropped
    assert "match" not in s.templates and not [t for t in engine.sent if "describe the image" in t]  # English only


def test_templates_are_translated_once_per_language():
    engine = DictEngine(TABLE)
    translator = CachingTranslator(engine)
    templates_for(translator, "de")
    n = len(engine.sent)
    assert templates_for(translator, "deu_Latn") is templates_for(translator, "de")
    assert len(engine.sent) == n


def test_add_prompts():
    frame = pl.DataFrame({
        "example_id": ["a", "b", "c", "d"],
        "task": ["caption", "vqa", "vqa", "vqa"],
        "lang": ["de", "de", "de", "en"],
        "text_en": ["A red dog.", "What color?", "What color?", "What color?"],
        "text_tgt": ["Ein roter Hund.", "Welche Farbe?", "Welche Farbe?", "What color?"],
        "answer_translated": [None, True, False, True],
    })
    out = add_prompts(frame, CachingTranslator(DictEngine(TABLE)))
    prompts = out["prompt"].to_list()
    assert prompts[0] == "Beschrifte das Bild auf Deutsch."
    assert "Welche Farbe?" in prompts[1] and "Deutsch" in prompts[1]
    assert "Welche Farbe?" in prompts[2] and "Englisch" in prompts[2]  # the answer stays English: it says so
    assert "What color?" in prompts[3] and "English" in prompts[3]
    assert add_prompts(frame, CachingTranslator(DictEngine(TABLE)))["prompt"].to_list() == prompts  # deterministic


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return load_translator(tiny_model_dir, EngineSettings(compute_type="int8"))


def test_real_model_templates_keep_their_slots(engine):
    s = translate_templates(engine, "fr")
    for task, templates in s.templates.items():
        for t in templates:
            assert t.count("{question}") == ("{question}" in "".join(TEMPLATES[task])) * 1
    assert sum(len(v) for v in s.templates.values()) + sum(s.dropped.values()) == sum(
        len(v) for t, v in TEMPLATES.items() if t not in ENGLISH_ONLY_TASKS)


def test_match_prompts_are_english_around_the_translated_caption():
    assert len(MATCH_TEMPLATES) == 12 and all("{caption}" in t for t, _, _ in MATCH_TEMPLATES)
    frame = pl.DataFrame({"example_id": [f"m{i}" for i in range(30)], "task": ["match"] * 30, "lang": ["de"] * 30,
                          "text_en": ["a red bike"] * 30, "text_tgt": ["ein rotes Fahrrad"] * 30})
    out = add_prompts(frame, CachingTranslator(DictEngine(TABLE)))
    used = set()
    for eid, prompt in zip(out["example_id"], out["prompt"]):
        template, _, _ = pick_match_template(eid)
        used.add(template)
        assert prompt == template.replace("{caption}", "ein rotes Fahrrad")
    assert len(used) > 6  # the hash spreads rows over the templates

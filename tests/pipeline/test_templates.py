"""The one template table: mBLIP's instruction mix (English templates naming the language next to
translated ones for captions, English for VQA), the filter on translated templates, slots kept out of
the model, and the inference prompts read from the same table."""

import inspect
from collections import Counter

import polars as pl
import pytest

import model.templates as model_templates
from pipeline.filters.rules import load_rules
from pipeline.nllb.engine import EngineSettings, Translation, load_translator
from pipeline.template_table import TASK_VQA_ENGLISH_ANSWER, TEMPLATES, TRANSLATED_TEMPLATES
from pipeline.templates import (
    DROP_CONTAINS_ENGLISH, PromptSettings, add_prompts, english_prompt, split_template, templates_for,
    translate_templates,
)
from pipeline.translate import CachingTranslator

DE = "deu_Latn"
GOOD = {  # plausible German for the plain caption templates: they pass the cheap checks
    "Caption the image.": "Beschrifte das Bild.",
    "Short image caption:": "Kurze Bildunterschrift:",
    "Summarize the image.": "Fasse das Bild zusammen.",
    "Briefly describe the image.": "Beschreibe das Bild kurz.",
    "Write a short image description.": "Schreibe eine kurze Bildbeschreibung.",
}


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


def _rows(n, task="caption", lang="de"):
    return pl.DataFrame(schema_overrides={"answer_translated": pl.Boolean}, data={
        "example_id": [f"{task}-{i}" for i in range(n)], "task": [task] * n, "lang": [lang] * n,
        "text_en": ["A red dog." if task == "caption" else "What color?"] * n,
        "text_tgt": ["Ein roter Hund." if task == "caption" else "Welche Farbe?"] * n,
        "answer_translated": [None if task == "caption" else True] * n,
    })


def test_split_template_keeps_slots_out():
    assert split_template("Question: {question} Answer in {lang}:") == ["Question:", "{question}", "Answer in {lang}:"]
    assert split_template("{question} Short answer:") == ["{question}", "Short answer:"]


def test_default_mix_is_the_papers():
    """Captions: English-with-language and translated templates, each equally often; VQA: English."""
    translator = CachingTranslator(DictEngine(GOOD))
    n = 6000
    prompts = add_prompts(pl.concat([_rows(n), _rows(600, "vqa")]), translator, check_model=False)["prompt"].to_list()
    english = {t.format(lang="German") for t in TEMPLATES["caption"]}
    translated = set(GOOD.values())
    counts = Counter("en" if p in english else "tr" if p in translated else p for p in prompts[:n])
    assert set(counts) == {"en", "tr"}, counts
    expected = len(english) / (len(english) + len(translated))  # 6 / 11, as mBLIP's per-language cycle
    assert abs(counts["en"] / n - expected) < 0.03, counts
    vqa = {t.format(lang="German", question="Welche Farbe?") for t in TEMPLATES["vqa"]}
    assert set(prompts[n:]) <= vqa  # VQA instructions stay English and name the answer language


def test_knob_sets_the_english_share_or_translates_nothing():
    translator = CachingTranslator(DictEngine(GOOD))
    english = {t.format(lang="German") for t in TEMPLATES["caption"]}
    for share, want in ((0.0, 0.0), (0.25, 0.25), (1.0, 1.0)):
        prompts = add_prompts(_rows(4000), translator, settings=PromptSettings(english_share=share),
                              check_model=False)["prompt"].to_list()
        assert abs(sum(p in english for p in prompts) / 4000 - want) < 0.03, share
    none = add_prompts(_rows(200), translator, settings=PromptSettings(translated_tasks=()), check_model=False)
    assert set(none["prompt"]) <= english


def test_translated_templates_fill_slots_and_drop_english():
    table = {**GOOD, "Short image caption:": "Short image caption:",  # copied: dropped (the paper's rule)
             "Short German answer:": "Kurze deutsche Antwort:", "Short English answer:": "Kurze englische Antwort:",
             "Question:": "Frage:", "Brief answer (in German):": "Kurze Antwort (auf Deutsch):",
             "Brief answer (in English):": "Kurze Antwort (auf Englisch):"}
    engine = DictEngine(table)
    both = PromptSettings(translated_tasks=("caption", "vqa"))
    s = translate_templates(CachingTranslator(engine), "de", settings=both, check_model=False)
    assert not [t for t in engine.sent if "{" in t]  # slots never reach the model
    assert len(s.translated["caption"]) == len(TRANSLATED_TEMPLATES["caption"]) - 1
    assert s.translated["vqa"] == ("{question} Kurze deutsche Antwort:",
                                   "Frage: {question} Kurze Antwort (auf Deutsch):")
    assert s.translated[TASK_VQA_ENGLISH_ANSWER] == ("{question} Kurze englische Antwort:",
                                                     "Frage: {question} Kurze Antwort (auf Englisch):")
    assert s.dropped[DROP_CONTAINS_ENGLISH] == 1 + 4 + 4  # the copied caption template, the untranslated vqa ones
    assert s.templates["caption"][0] == "Caption the image in German."  # English templates always there


@pytest.fixture(scope="module")
def shipped():
    from pipeline.nllb.shipped import shipped_model_dir

    return load_translator(shipped_model_dir(), EngineSettings(compute_type="int8"))


class GarbleTemplates:
    """Forward translations from a table; back-translation and scores from a real model."""

    def __init__(self, table, model):
        self.table, self.model = table, model

    def translate(self, texts, src_lang, tgt_lang, **options):
        if src_lang == "eng_Latn":
            return [Translation(text=self.table[t]) for t in texts]
        return self.model.translate(texts, src_lang, tgt_lang, **options)

    def score(self, *args, **kwargs):
        return self.model.score(*args, **kwargs)

    def cache_key(self):
        return f"garble-{id(self)}"


def test_a_template_failing_the_filter_is_not_used(shipped):
    from pipeline.filters.quality import apply_quality_filter

    plain = [t.strip() for t in TRANSLATED_TEMPLATES["caption"]]  # what is sent: the template's text
    table = {t: "Ein Bild derschaftschafts." for t in plain}  # what the shipped model made of a template
    translator = GarbleTemplates(table, shipped)
    rules = load_rules(None, shipped_model=True)
    verdict = apply_quality_filter(pl.DataFrame({"text_en": list(plain), "text_tgt": [table[t] for t in plain],
                                                 "lang_nllb": [DE] * len(plain)}),
                                   shipped, rules, model_languages=frozenset({DE}))["reject_reason"].to_list()
    assert sum(r is not None for r in verdict) >= 4
    s = translate_templates(translator, "de", rules=rules, model_languages=frozenset({DE}))
    assert len(s.translated.get("caption", ())) == sum(r is None for r in verdict)  # exactly the ones that pass
    assert sorted(r for _, _, r in s.dropped_texts) == sorted(f"filter:{r}" for r in verdict if r)
    prompts = add_prompts(_rows(300), translator, rules=rules, model_languages=frozenset({DE}))["prompt"]
    english = {t.format(lang="German") for t in TEMPLATES["caption"]}
    assert set(prompts) <= english | set(s.translated.get("caption", ()))
    assert sum(p in english for p in prompts) / 300 > 0.75  # 6 English next to at most one survivor


def test_templates_are_translated_once_per_language():
    engine = DictEngine(GOOD)
    translator = CachingTranslator(engine)
    templates_for(translator, "de", check_model=False)
    n = len(engine.sent)
    again = templates_for(translator, "deu_Latn", check_model=False)
    assert again is templates_for(translator, "de", check_model=False)
    assert len(engine.sent) == n


def test_english_answer_prompt_and_english_rows():
    frame = pl.DataFrame({
        "example_id": ["b", "c", "d"], "task": ["vqa"] * 3, "lang": ["de", "de", "en"],
        "text_en": ["What color?"] * 3, "text_tgt": ["Welche Farbe?", "Welche Farbe?", "What color?"],
        "answer_translated": [True, False, True],
    })
    prompts = add_prompts(frame, CachingTranslator(DictEngine(GOOD)), check_model=False)["prompt"].to_list()
    assert "Welche Farbe?" in prompts[0] and "German" in prompts[0]
    assert "Welche Farbe?" in prompts[1] and "English" in prompts[1]  # the answer stays English: it says so
    assert "What color?" in prompts[2] and "English" in prompts[2]


def test_inference_and_training_read_one_table():
    source = inspect.getsource(model_templates).split("\"\"\"", 2)[2]  # code, not the docstring
    assert "Caption the image" not in source and "Answer in" not in source  # no second copy of the table
    assert model_templates.caption_prompt("de") == TEMPLATES["caption"][0].format(lang="German")
    assert model_templates.vqa_prompt(" Wie? ", "fr") == TEMPLATES["vqa"][0].format(lang="French", question="Wie?")
    for i in range(50):
        assert model_templates.caption_prompt("de", f"k{i}") == english_prompt("caption", "de", f"k{i}")
        assert model_templates.caption_prompt("de", f"k{i}") in {t.format(lang="German") for t in TEMPLATES["caption"]}


def test_match_prompts_are_english_around_the_translated_caption():
    from pipeline.template_table import MATCH_TEMPLATES, pick_match_template
    from pipeline.templates import english_templates, prompt_and_target

    assert len(MATCH_TEMPLATES) == 12 and all("{caption}" in t for t, _, _ in MATCH_TEMPLATES)
    used = set()
    for i in range(40):
        eid = f"m{i}"
        template, yes, _ = pick_match_template(eid)
        row = {"example_id": eid, "task": "match", "text_en": "a red bike", "text_tgt": "ein rotes Fahrrad",
               "answer_en": yes}
        prompt, target = prompt_and_target(row, english_templates("de"))
        assert prompt == template.replace("{caption}", "ein rotes Fahrrad") and target == yes
        used.add(template)
    assert len(used) > 6  # the hash spreads rows over the templates


def test_language_names_knob_restores_the_references_spelling(tmp_path):
    from pipeline.config import PipelineConfig

    frame = pl.DataFrame({
        "example_id": ["b", "h", "n"], "task": ["vqa"] * 3, "lang": ["bn", "ht", "ny"],
        "text_en": ["What color?"] * 3, "text_tgt": ["Q?"] * 3, "answer_translated": [True] * 3,
    })
    translator = CachingTranslator(DictEngine(GOOD))
    project = add_prompts(frame, translator, check_model=False)["prompt"].to_list()
    assert ["Bengali" in project[0], "Haitian Creole" in project[1], "Chichewa" in project[2]] == [True] * 3
    config = PipelineConfig.model_validate({"sources": [{"type": "imagenet", "images": str(tmp_path),
                                                         "classes": str(tmp_path / "c.json")}],
                                            "prompts": {"language_names": "reference"}})
    reference = add_prompts(frame, translator, settings=config.prompts.settings(), check_model=False)["prompt"]
    assert ["Bangla" in reference[0], "Haitian" in reference[1] and "Creole" not in reference[1],
            "Nyanja" in reference[2]] == [True] * 3
    with pytest.raises(ValueError, match="language_names"):
        PipelineConfig.model_validate({"sources": config.model_dump()["sources"], "prompts": {"language_names": "x"}})

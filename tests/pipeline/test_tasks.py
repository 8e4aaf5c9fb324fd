"""Every task of the mix through the chunk stage: prompt and target from the one template table,
preset-language rows untranslated, the task mix hash-stable."""

import polars as pl
import pytest

from pipeline.languages import get_language, resolve_languages
from pipeline.mix import REASON_CAP, REASON_SHARE, mix_hash, mix_thresholds
from pipeline.process import ProcessSettings, process_rows
from pipeline.schema import (
    SOURCE_SCHEMA,
    STATUS_KEPT,
    STATUS_REJECTED,
    TASK_AOKVQA_COT,
    TASK_AOKVQA_EXPLAIN,
    TASK_CLASSIFY,
    TASK_DECIDE,
    TASK_INSTRUCT,
    TASK_LLAVA,
    TASK_VQG,
    conform,
    make_example_id,
)
from pipeline.template_table import TEMPLATES, TRANSLATED_TEMPLATES

LANGS = resolve_languages(["de", "fr"])


def _row(rid, task, text, **values):
    return {
        "example_id": make_example_id("s", rid),
        "source": "s",
        "source_record_id": rid,
        "source_file": "f",
        "task": task,
        "image_id": "1",
        "image_path": "a.jpg",
        "text_en": text,
        **values,
    }


ROWS = [
    _row("vqg", TASK_VQG, "What colour is the car?", answer_en="red", answers_en=["red"]),
    _row(
        "ex", TASK_AOKVQA_EXPLAIN, "It is raining.", context_en="Why the umbrella?", answer_en="rain", preset_lang="en"
    ),
    _row("cot", TASK_AOKVQA_COT, "It is raining.", context_en="Why the umbrella?", answer_en="rain", preset_lang="en"),
    _row("cot-t", TASK_AOKVQA_COT, "It is raining.", context_en="Why the umbrella?", answer_en="rain"),
    _row("llava", TASK_LLAVA, "A cat on a sofa.", context_en="What is in the image?"),
    _row("cls", TASK_CLASSIFY, "Goldfisch", preset_lang="de"),
    _row("yes", TASK_DECIDE, "Goldfisch", answer_en="yes", preset_lang="de"),
    _row("no", TASK_DECIDE, "Hai", answer_en="no", preset_lang="de"),
    _row("rel", TASK_INSTRUCT, "Un chien.", context_en="Légende :", preset_lang="fr"),
]


class Upper:
    """A translator that marks its output (upper case plus the target), so the test sees what was translated."""

    def translate(self, texts, src_lang, tgt_lang, **options):
        from pipeline.nllb.engine import Translation

        targets = tgt_lang if isinstance(tgt_lang, list) else [tgt_lang] * len(texts)
        return [Translation(text=f"{t.upper()} <{g}>") for t, g in zip(texts, targets)]

    def cache_key(self):
        return "upper"


@pytest.fixture(scope="module")
def processed():
    rows = conform(pl.DataFrame(ROWS, schema_overrides={"answers_en": pl.List(pl.String)}), SOURCE_SCHEMA)
    out = process_rows(rows, ProcessSettings(LANGS, backtranslate=False), Upper())
    return {r["source_record_id"]: r for r in out.iter_rows(named=True)}


def test_every_task_has_prompt_and_target(processed):
    assert all(r["prompt"] and r["target"] for r in processed.values())


def test_vqg_prompt_names_the_language_of_the_target_question(processed):
    r = processed["vqg"]
    assert r["lang"] in ("de", "fr") and r["target"] == r["text_tgt"] and r["text_tgt"].endswith(f"<{r['lang_nllb']}>")
    # Whatever template survived translation (here: the English fallback), it names the question's language.
    assert get_language(r["lang"]).name.upper() in r["prompt"].upper() and "red" in r["prompt"].lower()


def test_preset_rows_are_not_translated(processed):
    ex, cot, cls = processed["ex"], processed["cot"], processed["cls"]
    assert ex["lang"] == "en" and ex["target"] == "It is raining." and "Why the umbrella?" in ex["prompt"]
    assert ex["prompt"] in {t.replace("{question}", "Why the umbrella?").replace("{answer}", "rain")
                            for t in TEMPLATES[TASK_AOKVQA_EXPLAIN]}
    assert "It is raining" in cot["target"] and "rain" in cot["target"]  # never a target without its rationale
    assert cls["lang"] == "de" and cls["target"] == "Goldfisch" and "German" in cls["prompt"]
    assert processed["rel"]["prompt"] == "Légende :" and processed["rel"]["target"] == "Un chien."
    assert all(processed[k]["status"] == STATUS_KEPT for k in ("ex", "cot", "cls", "yes", "no", "rel"))


def test_translated_cot_keeps_rationale_and_context(processed):
    r = processed["cot-t"]
    assert "IT IS RAINING" in r["target"] and r["context_tgt"].startswith("WHY THE UMBRELLA?")
    assert r["context_tgt"] in r["prompt"]


def test_llava_prompt_is_the_translated_instruction(processed):
    r = processed["llava"]
    assert r["prompt"] == r["context_tgt"] == f"WHAT IS IN THE IMAGE? <{r['lang_nllb']}>"
    assert r["target"] == r["text_tgt"] == f"A CAT ON A SOFA. <{r['lang_nllb']}>"


def test_decide_yes_no_pairs_with_its_question(processed):
    yes, no = processed["yes"], processed["no"]
    assert "Goldfisch" in yes["prompt"] and yes["target"] in TEMPLATES["decide_yes"]
    assert "Hai" in no["prompt"] and no["target"] in TEMPLATES["decide_no"]
    pairs = set(zip(TEMPLATES["decide"], TEMPLATES["decide_no"]))  # the no-answer of that very question
    assert (no["prompt"].replace("Hai", "{label}"), no["target"]) in pairs


def test_cot_targets_all_hold_the_rationale():
    for template in TEMPLATES["aokvqa_cot_target"]:
        assert "{rationale}" in template and "{answer}" in template


def test_mix_shares_and_caps_are_hash_stable():
    ids = [("caption", f"c{i}") for i in range(1000)] + [("vqa", f"v{i}") for i in range(1000)]
    rules = {"caption": {"share": 0.5, "cap": None}, "vqa": {"share": 1.0, "cap": 100}}
    t = mix_thresholds(ids, rules, seed=3)
    kept = {eid for task, eid in ids if mix_hash(eid, 3) < min(t[task])}
    assert 430 < sum(e.startswith("c") for e in kept) < 570
    assert sum(e.startswith("v") for e in kept) == 100
    # Adding a source of another task moves nothing.
    more = ids + [("llava", f"l{i}") for i in range(500)]
    t2 = mix_thresholds(more, {**rules, "llava": {"share": 0.2, "cap": None}}, seed=3)
    assert t2["caption"] == t["caption"] and t2["vqa"] == t["vqa"]
    # A share never depends on other rows: more captions keep every caption kept before.
    t3 = mix_thresholds(ids + [("caption", f"x{i}") for i in range(1000)], rules, seed=3)
    assert t3["caption"] == t["caption"]


def test_mixed_out_rows_are_rejected_untranslated():
    rows = conform(pl.DataFrame([_row(f"c{i}", "caption", f"A dog {i}.") for i in range(200)]), SOURCE_SCHEMA)
    ids = list(zip(rows["task"].to_list(), rows["example_id"].to_list()))
    mix = mix_thresholds(ids, {"caption": {"share": 0.5, "cap": 40}}, seed=0)
    out = process_rows(rows, ProcessSettings(LANGS, backtranslate=False, mix=mix), Upper())
    assert out.height == 200 and out["source_record_id"].to_list() == rows["source_record_id"].to_list()
    dropped = out.filter(pl.col("reject_reason").is_in([REASON_SHARE, REASON_CAP]))
    assert set(dropped["status"]) == {STATUS_REJECTED} and dropped["text_tgt"].null_count() == dropped.height
    assert out.height - dropped.height == 40
    # the share leaves out the rows hashing at or above 0.5; the cap keeps the 40 lowest of the rest
    hashes = {eid: mix_hash(eid, 0) for eid in rows["example_id"]}
    below = sorted((eid for eid, h in hashes.items() if h < 0.5), key=hashes.get)
    expected = {eid: None if eid in below[:40] else REASON_CAP if eid in below else REASON_SHARE for eid in hashes}
    mix_reasons = [r if r in (REASON_SHARE, REASON_CAP) else None for r in out["reject_reason"]]
    assert dict(zip(out["example_id"], mix_reasons)) == expected
    assert len(below) > 40  # the cap takes effect


def test_the_english_slice_stays_english_and_is_kept():
    rows = conform(
        pl.DataFrame([_row(f"c{i}", "caption", f"A dog number {i} runs.") for i in range(60)]), SOURCE_SCHEMA
    )
    out = process_rows(rows, ProcessSettings(resolve_languages(["en", "de"]), backtranslate=False), Upper())
    english = out.filter(pl.col("lang") == "en")
    assert english.height > 30  # en has by far the larger mC4 share
    assert english["text_tgt"].to_list() == english["text_en"].to_list()
    assert set(english["status"]) == {STATUS_KEPT} and english["target"].to_list() == english["text_en"].to_list()
    # English caption rows draw the plain templates as they are (the reference's generate_en); the
    # templates naming the language are for the other languages
    assert set(english["prompt"]) == set(TRANSLATED_TEMPLATES["caption"])
    german = out.filter(pl.col("lang") == "de")
    assert all(t.endswith("<deu_Latn>") for t in german["text_tgt"])


def test_fan_out_mode_refuses_fixed_language_sources(tmp_path):
    from pipeline.config import PipelineConfig

    source = {"type": "imagenet", "images": str(tmp_path), "classes": str(tmp_path / "c.json")}
    with pytest.raises(ValueError, match="cannot fan out.*imagenet"):
        PipelineConfig.model_validate({"sources": [source], "assignment": {"mode": "all"}})
    assert PipelineConfig.model_validate({"sources": [source]}).sources[0].passes == 8


def test_export_uses_the_row_target(processed):
    from pipeline.export import row_target

    assert row_target(processed["no"]) == processed["no"]["target"] != processed["no"]["text_tgt"]
    assert row_target(processed["cot"]) == processed["cot"]["target"]

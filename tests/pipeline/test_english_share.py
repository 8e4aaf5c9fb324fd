"""English at its mC4 share: in the default language set, never translated, exempt from the checks
that only make sense for a translation, and shown in the card."""

import csv
import math
from pathlib import Path

import polars as pl

from pipeline.assign import assign_languages
from pipeline.config import PipelineConfig
from pipeline.filters.quality import apply_quality_filter
from pipeline.filters.rules import FilterRules
from pipeline.languages import load_languages
from pipeline.schema import make_example_id
from pipeline.translate import translate_frame

TABLE = Path(__file__).resolve().parents[2] / "pipeline" / "languages.tsv"
N = 200_000


def _table_shares() -> dict[str, float]:
    with TABLE.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    total = sum(float(r["mc4_share_pct"]) for r in rows)
    return {r["code"]: float(r["mc4_share_pct"]) / total for r in rows}


def test_default_languages_give_every_language_its_mc4_share_english_included():
    config = PipelineConfig.model_validate({"sources": [{"type": "coco_captions", "annotations": "a.json",
                                                          "images": "."}]})
    frame = pl.DataFrame({"example_id": [make_example_id("coco_captions", str(i)) for i in range(N)]})
    counts = dict(assign_languages(frame, config.languages(), seed=0)["lang"].value_counts().iter_rows())
    shares = _table_shares()
    assert set(shares) == {lang.code for lang in load_languages()}
    worst = 0.0
    for code, p in shares.items():
        sigma = math.sqrt(p * (1 - p) / N)
        z = abs(counts.get(code, 0) / N - p) / sigma
        worst = max(worst, z)
        assert z < 4.5, (code, counts.get(code, 0) / N, p)
    assert abs(counts["en"] / N - 0.4384) < 0.005  # English keeps ~43.8%, as in the paper
    print(f"max deviation {worst:.2f} sigma over {len(shares)} languages")


def test_english_rows_are_not_translated():
    class Refuses:
        def translate(self, texts, src_lang, tgt_lang, **options):
            raise AssertionError(f"asked to translate {texts} into {tgt_lang}")

    frame = pl.DataFrame({"example_id": ["a"], "text_en": ["A red dog runs on the grass."], "lang_nllb": ["eng_Latn"]})
    assert translate_frame(frame, Refuses())["text_tgt"].to_list() == ["A red dog runs on the grass."]


def test_english_rows_are_kept_but_a_copy_into_german_is_not():
    en = "A man is sleeping in a green room on a couch with two cats."
    frame = pl.DataFrame({"text_en": [en, en, "yes"], "text_tgt": [en, en, "yes"],
                          "lang_nllb": ["eng_Latn", "deu_Latn", "eng_Latn"],
                          "answer_en": [None, None, "Two"], "answer_tgt": [None, None, "Two"]})
    out = apply_quality_filter(frame, None, FilterRules())
    assert out["reject_reason"].to_list() == [None, "copy_of_source", None]
    assert out["score_copy_overlap"][0] is None  # not applicable, not a perfect copy score


def test_a_few_languages_keep_english_at_the_full_mix_share():
    from pipeline.assign import language_weights
    from pipeline.languages import resolve_languages

    langs = resolve_languages(["en", "de", "fr", "cs"])
    frame = pl.DataFrame({"example_id": [make_example_id("vqav2", str(i)) for i in range(N)]})
    counts = dict(assign_languages(frame, langs, seed=0, english_share=0.4384)["lang"].value_counts().iter_rows())
    weights = dict(zip([lang.code for lang in langs], language_weights(langs, 0.4384)))
    assert weights["en"] == 0.4384 and abs(sum(weights.values()) - 1) < 1e-12
    assert abs(weights["de"] / weights["fr"] - 6.088564 / 5.065605) < 1e-9  # the rest keeps mC4 proportions
    for code, p in weights.items():
        assert abs(counts[code] / N - p) < 4.5 * math.sqrt(p * (1 - p) / N), code


def test_language_shares_count_only_rows_the_run_assigned():
    """Rows whose source fixed the language (English A-OKVQA, ImageNet names) are not part of the
    assignment: English's share is measured over the assigned rows, the preset ones are counted apart."""
    from pipeline.schema import QUARANTINE_SCHEMA, ROW_SCHEMA, STATUS_KEPT, conform
    from pipeline.outputs.stats import compute_stats

    def row(i, lang, preset):
        return {"example_id": f"r{i}", "source": "s", "task": "caption", "lang": lang, "status": STATUS_KEPT,
                "preset_lang": preset}

    rows = [row(i, "en", None) for i in range(44)] + [row(100 + i, "de", None) for i in range(56)]
    rows += [row(200 + i, "en", "en") for i in range(50)]
    frame = conform(pl.DataFrame(rows, infer_schema_length=None), ROW_SCHEMA)
    stats = compute_stats(frame.lazy(), pl.DataFrame(schema=QUARANTINE_SCHEMA),
                          {"s": {"rows": 150, "quarantined": 0}}, 1, {"en": 0.44, "de": 0.56})
    en, de = stats["languages"]["en"], stats["languages"]["de"]
    assert en["assigned"] == 94 and en["preset"] == 50 and de["preset"] == 0
    assert math.isclose(en["assigned_share"], 0.44) and math.isclose(de["assigned_share"], 0.56)

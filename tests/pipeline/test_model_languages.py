"""A run produces only languages its translation model covers: one it does not cover is refused before any
work, naming the language and the model; a row the model did not score must be identified as its language."""

import polars as pl
import pytest
import yaml

from pipeline.build import build_dataset
from pipeline.config import check_model_languages, load_config
from pipeline.demo.data import demo_paths
from pipeline.filters.quality import apply_quality_filter
from pipeline.filters.rules import FilterRules
from pipeline.languages import load_languages
from pipeline.nllb.engine import model_languages
from pipeline.nllb.shipped import shipped_model_dir

GERMAN = "Ein Mann in einem roten Hemd fährt mit dem Fahrrad die Straße entlang."


def test_the_shipped_model_covers_its_four_languages_and_a_converted_nllb_every_one(tiny_model_dir):
    assert model_languages(shipped_model_dir()) == {"ces_Latn", "deu_Latn", "eng_Latn", "fra_Latn"}
    # No recorded list (NLLB-200): every language token of the vocabulary.
    assert {lang.nllb for lang in load_languages()} <= model_languages(tiny_model_dir)


def _config(tmp_path, demo_root, languages: list[str], model: str = "shipped"):
    paths = demo_paths(demo_root)
    config = {
        "sources": [{"type": "coco_captions", "annotations": str(paths.captions),
                     "images": str(paths.images / "train2014")}],
        "run": {"languages": languages},
        "translation": {"model": model},
        "output": {"dir": str(tmp_path / "out")},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    return load_config(tmp_path / "run.yaml")


def test_a_language_the_model_does_not_cover_is_refused_before_any_work(tmp_path, demo_root):
    config = _config(tmp_path, demo_root, ["en", "de", "nl", "es", "lb"])
    with pytest.raises(ValueError) as error:
        build_dataset(config)
    message = str(error.value)
    assert "nl, es, lb" in message and "'shipped'" in message and str(shipped_model_dir()) in message
    assert "ces_Latn, deu_Latn, eng_Latn, fra_Latn" in message and "run.languages: [en, de]" in message
    assert not (tmp_path / "out").exists()  # nothing created, not even the lock


def test_every_default_language_needs_a_model_that_covers_them(tmp_path, demo_root, tiny_model_dir):
    with pytest.raises(ValueError, match="not .*nl.*; list only languages it covers"):
        check_model_languages(_config(tmp_path, demo_root, []), shipped_model_dir())
    check_model_languages(_config(tmp_path, demo_root, [], str(tiny_model_dir)), tiny_model_dir)
    check_model_languages(_config(tmp_path, demo_root, ["en", "de", "fr", "cs"]), shipped_model_dir())


def test_without_a_model_score_the_language_must_be_identified_first():
    # German output labelled Luxembourgish: py3langid ranks lb second, within the default top 3.
    frame = pl.DataFrame({"text_en": ["A man in a red shirt rides a bicycle down the street."] * 2,
                          "text_tgt": [GERMAN] * 2, "lang_nllb": ["ltz_Latn"] * 2,
                          "score_fwd_logprob": [None, -1.0]}, schema_overrides={"score_fwd_logprob": pl.Float64})
    out = apply_quality_filter(frame, None, FilterRules())
    assert out["score_langid_rank"].to_list() == [2, 2]
    assert out["reject_reason"].to_list() == ["wrong_language", None]  # the scored row: the model vouched
    lenient = apply_quality_filter(frame, None, FilterRules(langid_max_rank_unscored=None))
    assert lenient["reject_reason"].to_list() == [None, None]

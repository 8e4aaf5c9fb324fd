"""Hostile text never becomes a row: every row's texts are checked at ingest (length per task, visible
text, markup, bidi overrides, combining marks, the source language's script), whatever language the row
is later assigned (English rows are kept as they are), and a failing row is quarantined with its field and
reason, which the card lists."""

import json
import shutil

import polars as pl
import pytest
import yaml

from pipeline.build import build_dataset
from pipeline.config import load_config
from pipeline.demo.data import demo_paths
from pipeline.ingest.checks import InputChecks, text_problem
from pipeline.ingest.coco import CocoCaptionsSource
from pipeline.ingest.stage import ingest_stage
from pipeline.ingest.vqav2 import Vqav2Source

HOSTILE = {
    "zero-width only": ("\u200b\u200c\u200d\u2060", "no_visible_text"),
    "bidi controls only": ("\u202a\u202b\u2066\u2067\u2069\u202c", "no_visible_text"),
    "emoji only": ("\U0001F436\U0001F431 \U0001F389!!", "no_visible_text"),
    "combining marks only": ("\u0301" * 500, "no_visible_text"),
    "Arabic in an English source": ("رجل يركب دراجة في الشارع", "wrong_script"),
    "Hebrew in an English source": ("איש רוכב על אופניים ברחוב", "wrong_script"),
    "100,000 characters": ("A dog runs. " * 8_334, "too_long"),
    "5,000 combining marks": ("A dog" + "\u0301" * 5_000, "too_long"),
    "Zalgo": ("A d\u0301\u0302\u0303\u0304\u0305\u0306og runs.", "combining_marks"),
    "script tag": ("A dog<script>alert(1)</script> runs.", "markup"),
    "HTML comment": ("A dog <!-- x --> runs.", "markup"),
    "bidi override": ("A dog runs \u202eeno yrev", "bidi_override"),
}
FINE = ["A dog runs.", "A sign that reads 北京 on a busy street.", "Phở and bánh mì on a table.",
        "x < y and a <3 b", "2", "A caf\u00e9 with a bidi isolate \u2066abc\u2069 and marks \u200e."]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_text_gets_its_reason(name):
    text, reason = HOSTILE[name]
    assert (text_problem(text, "caption", InputChecks()) or "").startswith(reason + ":")


@pytest.mark.parametrize("text", FINE)
def test_ordinary_text_passes(text):
    assert text_problem(text, "caption", InputChecks()) is None


def test_a_preset_language_may_use_its_own_script_or_latin():
    checks = InputChecks()
    assert text_problem("犬と猫", "classify", checks, preset_lang="ja") is None
    assert text_problem("Katze", "classify", checks, preset_lang="ja") is None
    assert text_problem("Собака", "classify", checks, preset_lang="ja").startswith("wrong_script: under 50% of "
                                                                                   "its letters in Latn or Jpan")


def test_knobs_have_documented_off_values_and_caps_per_task():
    long_caption = "A dog runs. " * 100  # 1,200 characters
    assert text_problem(long_caption, "caption", InputChecks()).startswith("too_long: over 1,000 characters")
    assert text_problem(long_caption, "llava", InputChecks()) is None  # a longer cap for LLaVA answers
    assert text_problem(long_caption, "caption", InputChecks(max_chars={"caption": None})) is None
    off = InputChecks(min_visible=0, min_script_share=None, reject_markup=False, reject_bidi_override=False,
                      max_mark_run=None, max_chars={"caption": None})
    assert all(text_problem(text, "caption", off) is None for text, _ in HOSTILE.values())
    # A config changes the caps it names; the others keep their defaults.
    assert InputChecks(max_chars={"caption": 50}).cap("vqa") == 1_000
    with pytest.raises(ValueError, match="unknown tasks \\['captions'\\]"):
        InputChecks(max_chars={"captions": 50})


def _hostile_sources(tmp_path, demo_root):
    """The demo's COCO captions and VQAv2 files with a hostile caption per kind and a 50,000-character answer."""
    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    paths = demo_paths(root)
    captions = json.loads(paths.captions.read_text())
    captions["annotations"] += [{"id": 900 + i, "image_id": 1, "caption": text}
                                for i, (text, _) in enumerate(HOSTILE.values())]
    paths.captions.write_text(json.dumps(captions))
    annotations = json.loads(paths.annotations.read_text())
    annotations["annotations"][0]["multiple_choice_answer"] = "yellow " * 7_143  # 50,001 characters
    annotations["annotations"][1]["answers"][3]["answer"] = "blue " * 10_000
    paths.annotations.write_text(json.dumps(annotations))
    return paths


def test_ingest_quarantines_hostile_rows_with_field_and_reason(tmp_path, demo_root):
    paths = _hostile_sources(tmp_path, demo_root)
    coco = CocoCaptionsSource(annotations=paths.captions, images=paths.images / "train2014")
    result = ingest_stage(coco, str(tmp_path / "work"), 25)
    assert (result.rows, result.quarantined) == (60, len(HOSTILE))
    quarantine = sorted((tmp_path / "work" / "quarantine" / "coco_captions").glob("*.parquet"))
    bad = pl.concat([pl.read_parquet(p) for p in quarantine])
    assert bad["record_id"].to_list() == [str(900 + i) for i in range(len(HOSTILE))]
    assert set(bad["field"]) == {"text_en"}
    assert [r.split(":")[0] for r in bad["reason"]] == [reason for _, reason in HOSTILE.values()]
    assert bad["raw"].str.len_chars().max() <= 2000 and bad["source_file"].is_not_null().all()

    vqa = Vqav2Source(questions=paths.questions, annotations=paths.annotations, images=paths.images)
    result = ingest_stage(vqa, str(tmp_path / "work"), 25)
    assert result.quarantined == 2
    bad = pl.read_parquet(next((tmp_path / "work" / "quarantine" / "vqav2").glob("*")))
    assert bad.select("field", "reason").rows() == [("answer_en", "too_long: over 1,000 characters (vqa)"),
                                                    ("answers_en[3]", "too_long: over 1,000 characters (vqa)")]


def test_changing_a_check_reingests_the_source(tmp_path, demo_root):
    paths = _hostile_sources(tmp_path, demo_root)
    coco = CocoCaptionsSource(annotations=paths.captions, images=paths.images / "train2014")
    work = str(tmp_path / "work")
    assert ingest_stage(coco, work, 25).quarantined == len(HOSTILE)
    lenient = InputChecks(min_script_share=None)
    assert ingest_stage(coco, work, 25, checks=lenient).quarantined == len(HOSTILE) - 2  # Arabic, Hebrew kept


def test_an_english_only_run_keeps_no_hostile_row_and_the_card_lists_the_reasons(tmp_path, demo_root):
    paths = _hostile_sources(tmp_path, demo_root)
    config = {"sources": [{"type": "coco_captions", "annotations": str(paths.captions),
                           "images": str(paths.images / "train2014")}],
              "run": {"languages": ["en"]}, "output": {"dir": str(tmp_path / "out")}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    build_dataset(load_config(tmp_path / "run.yaml"))
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["totals"] == {"records": 60 + len(HOSTILE), "kept": 60, "rejected": 0, "quarantined": len(HOSTILE)}
    card = (tmp_path / "out" / "README.md").read_text()
    for reason in ("no_visible_text: no letter or digit", "wrong_script: under 50% of its letters in Latn",
                   "too_long: over 1,000 characters (caption)", "markup: an HTML/XML tag, comment or declaration",
                   "bidi_override", "combining_marks: more than 5 combining marks in a row"):
        assert f"| {reason}" in card
    assert "input_checks" in (tmp_path / "out" / "config.resolved.yaml").read_text()


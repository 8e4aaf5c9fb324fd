"""Chunk keys, plans and re-decision."""

from pathlib import Path

import polars as pl
import pytest

from pipeline.assign import assign_languages
from pipeline.languages import resolve_languages
from pipeline.build import remove_temporaries
from pipeline.chunks import (
    ACTION_DONE, ACTION_PROCESS, ACTION_REDECIDE, decision_key, plan_chunk, processed_file, translation_key,
)
from pipeline.process import decide_rows, merge_language_rows, reset_decision, rows_for_languages
from pipeline.schema import make_example_id

LANGS = resolve_languages(("de", "fr", "cs"))
MODEL = {"model_id": "tiny", "revision": "abc", "quantization": "int8"}


def english_rows(n: int = 40) -> pl.DataFrame:
    ids = [make_example_id("coco", str(i)) for i in range(n)]
    return pl.DataFrame({"example_id": ids, "source": ["coco"] * n, "text_en": [f"a red circle {i}" for i in range(n)]})


def test_translation_key_changes_with_every_input_but_not_thresholds():
    base = translation_key(MODEL, "beam=1", ["de", "fr"], 0, "proportional", True)
    assert base == translation_key(dict(MODEL), "beam=1", ["de", "fr"], 0, "proportional", True)
    variants = [
        translation_key({**MODEL, "revision": "def"}, "beam=1", ["de", "fr"], 0, "proportional", True),
        translation_key(MODEL, "beam=4", ["de", "fr"], 0, "proportional", True),
        translation_key(MODEL, "beam=1", ["de"], 0, "proportional", True),
        translation_key(MODEL, "beam=1", ["de", "fr"], 1, "proportional", True),
        translation_key(MODEL, "beam=1", ["de", "fr"], 0, "all", True),
        translation_key(MODEL, "beam=1", ["de", "fr"], 0, "proportional", False),
    ]
    assert len({base, *variants}) == 7
    assert decision_key({"min_bt_chrf": 35.0}) != decision_key({"min_bt_chrf": 20.0})


def test_plan_chunk_finds_done_redecidable_and_new_work(tmp_path):
    chunk = tmp_path / "ingest" / "coco" / "chunk-00000.parquet"
    chunk.parent.mkdir(parents=True)
    english_rows().write_parquet(chunk)
    assert plan_chunk(tmp_path, "coco", chunk, "t1", "d1").action == ACTION_PROCESS

    done = plan_chunk(tmp_path, "coco", chunk, "t1", "d1")
    Path(done.out).parent.mkdir(parents=True)
    pl.DataFrame({"x": [1]}).write_parquet(done.out)  # pretend it was processed
    assert plan_chunk(tmp_path, "coco", chunk, "t1", "d1").action == ACTION_DONE
    assert plan_chunk(tmp_path, "coco", chunk, "t1", "d1", force=True).action == ACTION_PROCESS

    other_threshold = plan_chunk(tmp_path, "coco", chunk, "t1", "d2")
    assert other_threshold.action == ACTION_REDECIDE and other_threshold.redecide_from == done.out
    assert plan_chunk(tmp_path, "coco", chunk, "t2", "d1").action == ACTION_PROCESS  # other model: no reuse

    english_rows(41).write_parquet(chunk)  # the source changed: its digest and file name change
    changed = plan_chunk(tmp_path, "coco", chunk, "t1", "d1")
    assert changed.action == ACTION_PROCESS and changed.out != done.out


def test_processed_file_name_carries_chunk_and_keys(tmp_path):
    path = processed_file(tmp_path, "vqav2", "x/chunk-00007.parquet", "abc123", "tk", "dk")
    assert path == tmp_path / "processed" / "vqav2" / "tk" / "dk" / "chunk-00007-abc123.parquet"


def _scored(n: int = 30) -> pl.DataFrame:
    frame = assign_languages(english_rows(n), LANGS, seed=0)
    return frame.with_columns(
        pl.Series("score_bt_chrf", [float(i * 3) for i in range(n)]),
        pl.Series("backtranslation_en", [f"bt {i}" for i in range(n)]),
    )


def test_redecide_from_stored_scores_equals_deciding_fresh():
    scored = _scored()
    at_35 = decide_rows(scored, backtranslate=True, min_bt_chrf=35.0)
    at_20 = decide_rows(scored, backtranslate=True, min_bt_chrf=20.0)
    again = decide_rows(reset_decision(at_35), backtranslate=True, min_bt_chrf=20.0)
    assert again.equals(at_20)
    assert at_20["status"].to_list().count("kept") > at_35["status"].to_list().count("kept")


def test_rows_for_languages_matches_a_full_assignment():
    rows = english_rows(200)
    full = assign_languages(rows, LANGS, seed=3)
    subset = rows_for_languages(rows, LANGS, ["fr"], seed=3, mode="proportional")
    again = assign_languages(subset, LANGS, seed=3)
    assert set(again["lang"].to_list()) == {"fr"}
    assert again["example_id"].to_list() == full.filter(pl.col("lang") == "fr")["example_id"].to_list()
    assert rows_for_languages(rows, LANGS, ["fr"], seed=3, mode="all").height == 200


def test_merge_language_rows_replaces_only_the_subset():
    existing = pl.DataFrame({"lang": ["de", "fr", "cs", "fr"], "v": [1, 2, 3, 4]})
    fresh = pl.DataFrame({"lang": ["fr", "fr"], "v": [20, 40]})
    merged = merge_language_rows(existing, fresh, ["fr"])
    assert sorted(merged.rows()) == [("cs", 3), ("de", 1), ("fr", 20), ("fr", 40)]


def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("mode", ["proportional", "all"])
def test_merge_after_subset_processing_gives_the_full_frame(mode):
    rows = english_rows(60)
    full = assign_languages(rows, LANGS, seed=0, mode=mode)
    sub = assign_languages(rows_for_languages(rows, LANGS, ["cs"], 0, mode), LANGS, seed=0, mode=mode)
    merged = merge_language_rows(full, sub.with_columns(pl.lit("new").alias("source")), ["cs"])
    assert merged.height == full.height
    assert set(merged.filter(pl.col("lang") == "cs")["source"].to_list()) <= {"new"}
    assert set(merged.filter(pl.col("lang") != "cs")["source"].to_list()) == {"coco"}


def test_remove_temporaries_deletes_only_half_written_files(tmp_path):
    keep = _write(tmp_path, "processed/a/chunk-00000-abc.parquet", "done")
    _write(tmp_path, "processed/a/.chunk-00001-def.parquet.tmp-123", "half")
    _write(tmp_path, "ingest/a/.chunk-00002.parquet.tmp-9", "half")
    assert remove_temporaries(tmp_path) == 2
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [keep]


def test_decode_keys_are_the_keys_of_outputs_made_before_the_reverse_knob():
    from pipeline.chunks import translation_key

    args = ({"model_id": "m"}, "beam=1", ("de",), 0, "proportional", True)
    assert translation_key(*args) == translation_key(*args, reverse="decode")
    assert len({translation_key(*args, reverse=r) for r in ("score", "decode", "both")}) == 3


def test_a_chunk_stored_under_another_reverse_mode_is_planned_for_rescoring(tmp_path):
    from pipeline.chunks import ACTION_PROCESS, ACTION_RESCORE, plan_chunk, processed_file, rescore_keys

    chunk = tmp_path / "chunk-00000.parquet"
    chunk.write_bytes(b"english rows")
    args = ({"model_id": "m"}, "beam=1", ("de",), 0, "proportional", True)
    from pipeline.chunks import chunk_digest, translation_key

    old = processed_file(tmp_path, "coco", chunk, chunk_digest(chunk), translation_key(*args, reverse="decode"), "d0")
    old.parent.mkdir(parents=True)
    old.write_bytes(b"stored")
    score_key = translation_key(*args, reverse="score")
    plan = plan_chunk(tmp_path, "coco", chunk, score_key, "d1", rescore_from=rescore_keys(*args, reverse="score"))
    assert plan.action == ACTION_RESCORE and plan.redecide_from == str(old)
    # A mode that decodes cannot be served by a stored output that never decoded.
    never_decoded = [k for k in rescore_keys(*args, reverse="both") if k != translation_key(*args, reverse="decode")]
    both = plan_chunk(tmp_path, "coco", chunk, translation_key(*args, reverse="both"), "d1", rescore_from=never_decoded)
    assert both.action == ACTION_PROCESS
    assert translation_key(*args, reverse="score") not in rescore_keys(*args, reverse="both")

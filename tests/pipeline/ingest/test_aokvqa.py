"""A-OKVQA reader on the official aokvqa_v1p0_*.json format."""

import json

import polars as pl
import pytest

from pipeline.ingest.aokvqa import AokvqaReader
from pipeline.ingest.base import SourceError
from pipeline.schema import TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN


def _record(qid, image_id, **over):
    rec = {
        "split": "train",
        "image_id": image_id,
        "question_id": qid,
        "question": "What is the man holding?",
        "choices": ["a bat", "an umbrella", "a kite", "a phone"],
        "correct_choice_idx": 1,
        "direct_answers": ["umbrella"] * 10,
        "difficult_direct_answer": False,
        "rationales": ["It is raining.", "He keeps dry under it.", "The object has a canopy."],
    }
    rec.update(over)
    return rec


def _images(tmp_path):
    root = tmp_path / "images"
    (root / "train2014").mkdir(parents=True)
    (root / "val2014").mkdir()
    (root / "train2014" / "COCO_train2014_000000000011.jpg").write_bytes(b"x")
    (root / "val2014" / "COCO_val2014_000000000022.jpg").write_bytes(b"x")
    return root


def _read(path, root, **kw):
    batches = list(AokvqaReader(path, root, **kw).iter_batches(4))
    return pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])


def test_one_example_per_rationale_and_task_with_resolved_images(tmp_path):
    root = _images(tmp_path)
    path = tmp_path / "aokvqa_v1p0_train.json"
    path.write_text(json.dumps([_record("q1", 11), _record("q2", 22)]))
    rows, bad = _read(path, root)
    assert bad.height == 0 and rows.height == 2 * 2 * 3
    assert rows.filter(pl.col("task") == TASK_AOKVQA_EXPLAIN).height == 6
    assert rows.filter(pl.col("task") == TASK_AOKVQA_COT).height == 6
    q2 = rows.filter(pl.col("source_record_id").str.starts_with("q2:"))
    assert set(q2["image_path"]) == {"val2014/COCO_val2014_000000000022.jpg"}  # a 2017 id found under val2014
    assert set(rows["answer_en"]) == {"an umbrella"} and set(rows["context_en"]) == {"What is the man holding?"}
    assert sorted(set(rows["text_en"])) == sorted(_record("q", 1)["rationales"])
    assert set(rows["preset_lang"]) == {"en"}  # English, as the paper


def test_translate_knob_leaves_language_to_the_assignment(tmp_path):
    root = _images(tmp_path)
    path = tmp_path / "aokvqa_v1p0_train.json"
    path.write_text(json.dumps([_record("q1", 11)]))
    rows, _ = _read(path, root, translate=True, tasks=(TASK_AOKVQA_COT,))
    assert rows.height == 3 and rows["preset_lang"].null_count() == 3


def test_bad_records_quarantined_missing_image_never_a_row(tmp_path):
    root = _images(tmp_path)
    path = tmp_path / "aokvqa_v1p0_train.json"
    path.write_text(
        json.dumps(
            [
                _record("q1", 11),
                _record("q2", 999),  # no file for this id
                _record("q3", 11, correct_choice_idx=7),
                _record("q4", 11, rationales=["fine", ""]),
                {"split": "test", "image_id": 11, "question_id": "q5", "question": "Why?", "choices": ["a", "b"]},
            ]
        )
    )
    rows, bad = _read(path, root, tasks=(TASK_AOKVQA_EXPLAIN,))
    assert set(rows["source_record_id"]) == {
        "q1:aokvqa_explain:0",
        "q1:aokvqa_explain:1",
        "q1:aokvqa_explain:2",
        "q4:aokvqa_explain:0",
    }
    reasons = {(r["record_id"], r["field"]) for r in bad.iter_rows(named=True)}
    assert ("q2:aokvqa_explain:0", "image_id") in reasons
    assert ("q3:aokvqa_explain:1", "correct_choice_idx") in reasons
    assert ("q4:aokvqa_explain:1", "rationales[1]") in reasons
    assert ("q5:aokvqa_explain:0", "correct_choice_idx") in reasons
    assert "COCO_val2014_000000000999.jpg" in bad.filter(pl.col("field") == "image_id")["reason"][0]
    assert set(bad["source_file"]) == {path.name}  # relative to the source root: no local folder
    assert rows.height + bad.height == 3 + 3 + 3 + 2 + 1  # one record per (question, rationale)


def test_not_a_list_is_a_source_error(tmp_path):
    path = tmp_path / "aokvqa_v1p0_train.json"
    path.write_text(json.dumps({"questions": []}))
    with pytest.raises(SourceError, match="aokvqa_v1p0_train.json"):
        _read(path, _images(tmp_path))


def test_questions_about_pope_images_are_left_out_and_the_card_counts_them(tmp_path, tiny_model_dir):
    import yaml

    from pipeline.build import build_dataset
    from pipeline.config import load_config

    root = _images(tmp_path)
    path = tmp_path / "aokvqa_v1p0_train.json"
    path.write_text(json.dumps([_record("q1", 11), _record("q2", 22)]))
    pope = tmp_path / "pope" / "coco_pope_adversarial.json"
    pope.parent.mkdir()
    pope.write_text(json.dumps({"question_id": 1, "image": "COCO_val2014_000000000022.jpg", "text": "Is there a cat?",
                                "label": "no"}) + "\n")
    config = {"sources": [{"type": "aokvqa", "path": str(path), "images": str(root), "pope": str(pope.parent)}],
              "run": {"languages": ["en", "de"]}, "translation": {"model": str(tiny_model_dir)},
              "output": {"dir": str(tmp_path / "out")}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    build_dataset(load_config(tmp_path / "run.yaml"))
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["sources"]["aokvqa"]["kept"] == 6 and stats["sources"]["aokvqa"]["quarantined"] == 6  # q2: 2 x 3
    [reason] = {r["reason"] for r in stats["quarantine_reasons"]}
    assert reason.startswith("pope_image")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "**aokvqa**: 6 records left out because their COCO image is one of the 1 POPE evaluation images" in card
    assert "## Web captions" not in card  # reader statistics of other sources make no web section

    config["sources"][0]["exclude_pope_images"] = False
    config["output"]["dir"] = str(tmp_path / "out2")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    build_dataset(load_config(tmp_path / "run.yaml"))
    stats = json.loads((tmp_path / "out2" / "stats.json").read_text())
    assert stats["sources"]["aokvqa"]["kept"] == 12 and stats["sources"]["aokvqa"]["quarantined"] == 0
    assert "POPE images are not excluded" in (tmp_path / "out2" / "README.md").read_text()

"""Small recipe fixes at ingest: a blank VQAv2 answer drops only itself (counted), and published rows
name their file relative to the source's root, so the same data in two folders gives the same rows."""

import json
import shutil

import polars as pl

from pipeline.ingest import Vqav2Reader
from pipeline.ingest.registry import parse_source
from pipeline.ingest.stage import ingest_source


def _vqa_files(root, answers):
    root.mkdir(parents=True, exist_ok=True)
    q = root / "v2_OpenEnded_mscoco_train2014_questions.json"
    a = root / "v2_mscoco_train2014_annotations.json"
    q.write_text(json.dumps({"data_subtype": "train2014", "questions": [
        {"image_id": 1, "question": "What color is it?", "question_id": 10},
        {"image_id": 1, "question": "Is it big?", "question_id": 11}]}))
    a.write_text(json.dumps({"annotations": [
        {"question_id": 10, "image_id": 1, "multiple_choice_answer": "red",
         "answers": [{"answer": t, "answer_id": i + 1} for i, t in enumerate(answers)]},
        {"question_id": 11, "image_id": 1, "multiple_choice_answer": "yes",
         "answers": [{"answer": "yes", "answer_id": i + 1} for i in range(10)]}]}))
    return q, a


def test_a_blank_answer_drops_only_that_answer_and_is_counted(tmp_path):
    q, a = _vqa_files(tmp_path, ["red"] * 8 + ["  ", "dark red"])
    batches = list(Vqav2Reader(q, a).iter_batches(100))
    rows = pl.concat([b.rows for b in batches])
    assert pl.concat([b.quarantine for b in batches]).height == 0
    assert rows["source_record_id"].to_list() == ["10", "11"]  # the question is kept
    assert rows["answers_en"][0].to_list() == ["red"] * 8 + ["dark red"]
    assert sum(b.counters.get("blank_answers_dropped", 0) for b in batches) == 1
    result = ingest_source(Vqav2Reader(q, a), tmp_path / "work", 100)
    assert result.counters == {"blank_answers_dropped": 1}


def test_same_data_in_two_folders_gives_identical_rows(tmp_path, demo_root):
    frames = []
    for where in ("run-a/deep/folder", "run-b"):
        data = tmp_path / where / "demo-data"
        shutil.copytree(demo_root, data)
        for kind, paths in (
            ("coco_captions", {"annotations": data / "annotations" / "captions_train2014.json"}),
            ("vqav2", {"questions": data / "vqa" / "v2_OpenEnded_mscoco_train2014_questions.json",
                       "annotations": data / "vqa" / "v2_mscoco_train2014_annotations.json"}),
        ):
            source = parse_source({"type": kind, "images": data, **paths})
            batches = list(source.open_reader(tmp_path / where / "work").iter_batches(1000))
            frames.append(pl.concat([b.rows for b in batches]))
    assert frames[0].equals(frames[2]) and frames[1].equals(frames[3])
    files = set(frames[0]["source_file"]) | set(frames[1]["source_file"])
    assert files == {"captions_train2014.json", "v2_OpenEnded_mscoco_train2014_questions.json"}
    assert not any(str(tmp_path) in f for f in files)

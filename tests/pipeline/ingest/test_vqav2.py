"""VQAv2 reader: official questions + annotations files joined on question_id."""

import json

import polars as pl

from pipeline.ingest import Vqav2Reader


def _answers(*texts):
    return [{"answer": t, "answer_confidence": "yes", "answer_id": i + 1} for i, t in enumerate(texts)]


def _write(tmp_path, questions, annotations):
    q = tmp_path / "v2_OpenEnded_mscoco_train2014_questions.json"
    a = tmp_path / "v2_mscoco_train2014_annotations.json"
    q.write_text(json.dumps({"info": {}, "task_type": "Open-Ended", "data_type": "mscoco",
                             "license": {}, "data_subtype": "train2014", "questions": questions}))
    a.write_text(json.dumps({"info": {}, "license": {}, "data_subtype": "train2014", "annotations": annotations}))
    return q, a


def _ann(qid, image_id, mc, answers):
    return {"question_id": qid, "image_id": image_id, "question_type": "what", "answer_type": "other",
            "multiple_choice_answer": mc, "answers": _answers(*answers)}


def _read(q, a):
    batches = list(Vqav2Reader(q, a).iter_batches(100))
    return pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])


def test_join_keeps_all_answers_and_image_path(tmp_path):
    ten = ["2"] * 8 + ["3", "two"]
    q, a = _write(
        tmp_path,
        [{"image_id": 458752, "question": "How many people?", "question_id": 458752000},
         {"image_id": 458752, "question": "Is it sunny?", "question_id": 458752001}],
        [_ann(458752001, 458752, "yes", ["yes"] * 10), _ann(458752000, 458752, "2", ten)],
    )
    rows, bad = _read(q, a)
    assert bad.height == 0
    first = rows.row(0, named=True)
    assert first["answer_en"] == "2" and first["answers_en"] == ten
    assert first["image_path"] == "train2014/COCO_train2014_000000458752.jpg"
    assert rows["task"].unique().to_list() == ["vqa"]
    assert rows["source_record_id"].to_list() == ["458752000", "458752001"]


def test_bad_questions_and_orphan_annotations_are_quarantined(tmp_path):
    questions = [
        {"image_id": 1, "question": "Good?", "question_id": 10},
        {"image_id": 1, "question": "No annotation?", "question_id": 11},
        {"image_id": 1, "question": "", "question_id": 12},
        {"image_id": 2, "question": "Wrong image?", "question_id": 13},
        {"image_id": 1, "question": "Duplicate?", "question_id": 10},
        {"image_id": 1, "question_id": 15},
    ]
    annotations = [
        _ann(10, 1, "yes", ["yes"] * 10), _ann(12, 1, "no", ["no"] * 10), _ann(13, 1, "no", ["no"] * 10),
        _ann(15, 1, "no", ["no"] * 10), _ann(99, 1, "orphan", ["orphan"] * 10),
        {"question_id": 16, "image_id": 1, "multiple_choice_answer": "x", "answers": [{"answer": 3}]},
    ]
    q, a = _write(tmp_path, questions, annotations)
    rows, bad = _read(q, a)
    assert rows["source_record_id"].to_list() == ["10"]
    got = {(r["record_id"], r["field"]): r["reason"] for r in bad.iter_rows(named=True)}
    assert got[("11", "questions.question_id")] == "no annotation for this question"
    assert got[("12", "questions.question")] == "empty text"
    assert got[("13", "questions.image_id")] == "question has image 2, annotation has 1"
    assert got[("10", "questions.question_id")] == "duplicate question id 10"
    assert got[("15", "questions.question")] == "missing required field"
    assert got[("99", "annotations.question_id")] == "annotation without a question"
    assert got[("16", "annotations.answers[0].answer")] == "expected str, got int"
    # each record once: 6 questions + 2 annotations without a question (99 and the bad 16)
    assert rows.height + bad.height == len(questions) + 2
    assert bad.height == 7
    orphan = bad.filter(pl.col("record_id") == "99").row(0, named=True)
    assert orphan["source_file"] == a.name  # relative to the source's root: no local folder in published rows


def test_bad_annotation_is_reported_once_against_its_question(tmp_path):
    q, a = _write(
        tmp_path,
        [{"image_id": 1, "question": "Colour?", "question_id": 5},
         {"image_id": 1, "question": "Ok?", "question_id": 6}],
        [{"question_id": 5, "image_id": 1, "multiple_choice_answer": "", "answers": _answers("red")},
         _ann(6, 1, "yes", ["yes"] * 10)],
    )
    rows, bad = _read(q, a)
    assert rows["source_record_id"].to_list() == ["6"]
    assert bad.height == 1
    r = bad.row(0, named=True)
    assert (r["record_id"], r["field"], r["reason"]) == ("5", "annotations.multiple_choice_answer", "empty text")

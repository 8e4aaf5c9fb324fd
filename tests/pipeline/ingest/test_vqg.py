"""Question generation from VQAv2: every row's question, answer and image come from one record."""

import json

import polars as pl

from pipeline.ingest import Vqav2Reader
from pipeline.ingest.vqav2 import Vqav2VqgSource
from pipeline.schema import TASK_VQG


def _files(tmp_path, n=20):
    questions = [{"image_id": 100 + i, "question": f"What is object {i}?", "question_id": 1000 + i} for i in range(n)]
    annotations = [
        {
            "question_id": 1000 + i,
            "image_id": 100 + i,
            "question_type": "what",
            "answer_type": "other",
            "multiple_choice_answer": f"thing {i}",
            "answers": [{"answer": f"thing {i}", "answer_confidence": "yes", "answer_id": 1}],
        }
        for i in reversed(range(n))
    ]  # another order than the questions: the join must not be positional
    q = tmp_path / "v2_OpenEnded_mscoco_train2014_questions.json"
    a = tmp_path / "v2_mscoco_train2014_annotations.json"
    q.write_text(json.dumps({"data_subtype": "train2014", "questions": questions}))
    a.write_text(json.dumps({"data_subtype": "train2014", "annotations": annotations}))
    return q, a


def test_vqg_rows_pair_question_answer_and_image_of_one_record(tmp_path):
    q, a = _files(tmp_path)
    reader = Vqav2VqgSource(questions=q, annotations=a, images=tmp_path).open_reader(tmp_path)
    rows = pl.concat([b.rows for b in reader.iter_batches(7)])
    assert rows.height == 20 and set(rows["task"]) == {TASK_VQG}
    for r in rows.iter_rows(named=True):
        i = int(r["source_record_id"]) - 1000
        assert r["text_en"] == f"What is object {i}?"
        assert r["answer_en"] == f"thing {i}"
        assert r["image_id"] == str(100 + i)
        assert r["image_path"] == f"train2014/COCO_train2014_{100 + i:012d}.jpg"


def test_vqg_rows_get_their_own_language_assignment(tmp_path):
    from pipeline.assign import assign_languages
    from pipeline.languages import resolve_languages

    q, a = _files(tmp_path, 200)
    vqa = pl.concat([b.rows for b in Vqav2Reader(q, a, name="vqav2").iter_batches(500)])
    vqg = pl.concat([b.rows for b in Vqav2Reader(q, a, name="vqav2_vqg", task=TASK_VQG).iter_batches(500)])
    langs = resolve_languages(())
    a1 = assign_languages(vqa, langs).sort("source_record_id")["lang"].to_list()
    a2 = assign_languages(vqg, langs).sort("source_record_id")["lang"].to_list()
    same = sum(x == y for x, y in zip(a1, a2))
    assert same < 100  # independent draws (~ sum of squared shares agree), not one assignment reused


def test_vqg_bad_record_quarantined_with_field(tmp_path):
    q, a = _files(tmp_path, 3)
    data = json.loads(q.read_text())
    data["questions"][1]["question"] = ""
    q.write_text(json.dumps(data))
    batches = list(Vqav2Reader(q, a, task=TASK_VQG).iter_batches(10))
    bad = pl.concat([b.quarantine for b in batches])
    assert bad.height == 1 and bad["field"][0] == "questions.question" and bad["record_id"][0] == "1001"
    assert sum(b.rows.height for b in batches) == 2

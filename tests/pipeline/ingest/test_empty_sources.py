"""A source that yields nothing is an error naming the file and what it holds instead, never a
silent run of 0 rows: a COCO file without ``annotations``, an ``annotations`` that is not a list, an
empty list, VQAv2 questions and annotations swapped, a Karpathy split selection matching nothing."""

import json

import pytest

from pipeline.ingest import CocoCaptionsReader, KarpathyCocoReader, SourceError, Vqav2Reader
from pipeline.ingest.stage import INGEST_DIR, INGEST_DONE, ingest_source

IMAGES = [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg"}]


def _coco(tmp_path, **doc):
    path = tmp_path / "captions_train2014.json"
    path.write_text(json.dumps({"info": {}, "images": IMAGES, **doc}))
    return path


def _read_all(reader):
    return [b for b in reader.iter_batches(100)]


@pytest.mark.parametrize("doc, message", [
    ({}, r"no top-level 'annotations' list \(top-level keys: 'info', 'images'\)"),
    ({"annotations": {"id": 1, "image_id": 1, "caption": "x"}}, "'annotations' is a JSON object, not a list"),
    ({"annotations": "none"}, "'annotations' is a string, not a list"),
    ({"annotations": []}, "'annotations' is an empty list"),
], ids=["missing", "object", "string", "empty"])
def test_coco_without_annotation_list_is_an_error(tmp_path, doc, message):
    path = _coco(tmp_path, **doc)
    with pytest.raises(SourceError, match=message) as err:
        _read_all(CocoCaptionsReader(path))
    assert str(path) in str(err.value) and "COCO captions" in str(err.value)


def test_vqav2_swapped_files_are_an_error(tmp_path):
    q = tmp_path / "v2_OpenEnded_mscoco_train2014_questions.json"
    a = tmp_path / "v2_mscoco_train2014_annotations.json"
    q.write_text(json.dumps({"data_subtype": "train2014",
                             "questions": [{"image_id": 1, "question": "Why?", "question_id": 10}]}))
    a.write_text(json.dumps({"data_subtype": "train2014", "annotations": [
        {"question_id": 10, "image_id": 1, "multiple_choice_answer": "yes",
         "answers": [{"answer": "yes", "answer_confidence": "yes", "answer_id": 1}]}]}))
    assert sum(b.rows.height for b in _read_all(Vqav2Reader(q, a))) == 1
    with pytest.raises(SourceError, match="swapped") as err:
        _read_all(Vqav2Reader(questions=a, annotations=q))
    assert str(q) in str(err.value) and "'questions'" in str(err.value)


def test_source_with_no_selected_record_fails_ingest(tmp_path):
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": [{"filepath": "val2014", "filename": "a.jpg", "cocoid": 1,
                                            "split": "test", "sentences": [{"raw": "A cat.", "sentid": 1}]}]}))
    with pytest.raises(SourceError, match="'coco_karpathy' yields no records"):
        ingest_source(KarpathyCocoReader(path, splits=("train",)), tmp_path / "work", chunk_rows=10)
    assert not (tmp_path / "work" / INGEST_DIR / "coco_karpathy" / INGEST_DONE).exists()  # not "done"

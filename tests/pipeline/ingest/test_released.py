"""Reader for the released mBLIP training file (JSON list of context, label, image_id)."""

import json

import polars as pl

from pipeline.ingest.released import ReleasedMblipReader
from pipeline.schema import TASK_INSTRUCT

RECORDS = [
    {
        "context": "Caption the image in German.",
        "label": "Ein Hund läuft über eine grüne Wiese im Park.",
        "image_id": "coco/train2014/COCO_train2014_000000000009.jpg",
    },
    {
        "context": "Short image caption:",
        "label": "A dog runs across a green meadow in the park.",
        "image_id": "coco/train2014/COCO_train2014_000000000009.jpg",
    },
    {"context": "Question?", "label": "", "image_id": "x.jpg"},
    {"context": "Q", "label": "A", "image_id": "/abs/path.jpg"},
]


def _read(path, **kw):
    batches = list(ReleasedMblipReader(path, **kw).iter_batches(2))
    return pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])


def test_rows_languages_and_quarantine(tmp_path):
    path = tmp_path / "task_mix_v2_mt.json"
    path.write_text(json.dumps(RECORDS))
    rows, bad = _read(path)
    assert rows["preset_lang"].to_list() == ["de", "en"] and set(rows["task"]) == {TASK_INSTRUCT}
    assert rows["context_en"][0] == "Caption the image in German." and rows["text_en"][1].startswith("A dog")
    assert rows["image_path"][0] == "coco/train2014/COCO_train2014_000000000009.jpg"
    assert {(r["record_index"], r["field"]) for r in bad.iter_rows(named=True)} == {(2, "label"), (3, "image_id")}


def test_fixed_language_and_retranslate(tmp_path):
    path = tmp_path / "task_mix_v2_mt.json"
    path.write_text(json.dumps(RECORDS[:2]))
    rows, _ = _read(path, language="fr")
    assert rows["preset_lang"].to_list() == ["fr", "fr"]
    rows, _ = _read(path, retranslate=True)
    assert rows["preset_lang"].to_list() == ["de", None]  # the English row is translated like a source

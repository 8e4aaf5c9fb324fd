"""Bring-your-own English data: JSONL, CSV, Parquet and a datasets folder, with a column mapping."""

import csv
import json

import polars as pl
import pytest

from pipeline.ingest.tabular import TabularReader

RECORDS = [
    {"uid": "a1", "file": "img/1.jpg", "text": "A dog on grass."},
    {"uid": "a2", "file": "img/2.jpg", "text": "Two cats."},
    {"uid": "a3", "file": "../etc/passwd", "text": "Escapes the root."},
    {"uid": "a4", "file": "img/4.jpg", "text": ""},
]
MAPPING = {"id": "uid", "image": "file", "caption": "text"}


def _read(path, columns=MAPPING, **kw):
    batches = list(TabularReader(path, columns, **kw).iter_batches(3))
    return pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])


def _check(rows, bad):
    assert rows["source_record_id"].to_list() == ["a1", "a2"]
    assert rows["text_en"].to_list() == ["A dog on grass.", "Two cats."] and set(rows["task"]) == {"caption"}
    assert {(r["record_id"], r["field"]) for r in bad.iter_rows(named=True)} == {("a3", "file"), ("a4", "text")}


def test_jsonl(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n{not json\n")
    rows, bad = _read(path)
    assert bad.filter(pl.col("field") == "<line>")["record_index"].to_list() == [4]
    _check(rows, bad.filter(pl.col("field") != "<line>"))


def test_csv(tmp_path):
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["uid", "file", "text"])
        w.writeheader()
        w.writerows(RECORDS)
    _check(*_read(path))


def test_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    pl.DataFrame(RECORDS).write_parquet(path)
    _check(*_read(path))


def test_datasets_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "hf"
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(folder))
    _check(*_read(folder))


def test_vqa_with_urls_and_task_column(tmp_path):
    path = tmp_path / "qa.jsonl"
    recs = [
        {"u": "https://example.org/1.jpg", "q": "What is it?", "a": "a dog", "t": "vqa"},
        {"u": "ftp://x/2.jpg", "q": "Why?", "a": "no", "t": "vqa"},
        {"u": "https://example.org/3.jpg", "q": "Who?", "a": "me", "t": "poem"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in recs))
    rows, bad = _read(path, {"image_url": "u", "question": "q", "answer": "a", "task": "t"})
    assert rows.row(0, named=True)["image_path"] == "https://example.org/1.jpg"
    assert rows["answer_en"].to_list() == ["a dog"] and rows["source_record_id"].to_list() == ["0"]
    assert bad["field"].to_list() == ["u", "t"]


def test_mapping_validated():
    with pytest.raises(ValueError, match="exactly one of 'image'"):
        TabularReader(__file__, {"caption": "c"}, format="csv")
    with pytest.raises(ValueError, match="unknown field"):
        TabularReader(__file__, {"image": "i", "caption": "c", "colour": "x"}, format="csv")

"""A row whose image file does not exist is quarantined as ``image_missing`` (unless the source opts
out), and the accounting still holds: records = rows + quarantined."""

import json

import polars as pl
import pytest

from pipeline.ingest import CocoCaptionsReader
from pipeline.ingest.base import SourceError
from pipeline.ingest.registry import parse_source
from pipeline.ingest.stage import ingest_source, ingest_stage, iter_quarantine


def _source(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    ann = tmp_path / "captions_train2014.json"
    ann.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "gone.jpg"}],
        "annotations": [{"id": 10, "image_id": 1, "caption": "A dog."},
                        {"id": 11, "image_id": 2, "caption": "A cat."},
                        {"id": 12, "image_id": 2, "caption": "Another cat."}],
    }))
    return ann, images


def test_missing_image_is_quarantined(tmp_path):
    ann, images = _source(tmp_path)
    result = ingest_source(CocoCaptionsReader(ann), tmp_path / "work", chunk_rows=2, image_root=images)
    rows = pl.concat([pl.read_parquet(c) for c in result.chunks])
    assert rows["source_record_id"].to_list() == ["10"]
    bad = pl.concat([pl.read_parquet(p) for p in iter_quarantine(tmp_path / "work", ["coco_captions"])])
    assert sorted(bad["record_id"].to_list()) == ["11", "12"]
    assert set(bad["field"]) == {"image_path"}
    assert all(r.startswith("image_missing: ") and "gone.jpg" in r for r in bad["reason"])
    assert not any(str(tmp_path) in r for r in bad["reason"])  # no local folder in the published reasons
    assert result.records == 3 and result.rows == 1 and result.quarantined == 2


@pytest.mark.parametrize("broken", ["typo", "loop"])
def test_missing_image_root_fails_before_any_work(tmp_path, broken):
    ann, images = _source(tmp_path)
    root = tmp_path / "imgaes"  # mistyped
    if broken == "loop":
        root = tmp_path / "loop"
        root.symlink_to(root)
    source = parse_source({"type": "coco_captions", "annotations": str(ann), "images": str(root)})
    with pytest.raises(SourceError, match=f"^image root not found: {root} "):
        ingest_stage(source, str(tmp_path / "work"), chunk_rows=2)
    assert not (tmp_path / "work").exists()  # nothing read, nothing written


def test_check_can_be_turned_off(tmp_path):
    ann, _ = _source(tmp_path)
    result = ingest_source(CocoCaptionsReader(ann), tmp_path / "work", chunk_rows=2, image_root=None)
    assert result.rows == 3 and result.quarantined == 0

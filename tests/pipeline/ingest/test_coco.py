"""COCO captions and Karpathy readers on small files in the exact published formats."""

import json

import polars as pl
import pytest

from pipeline.ingest import CocoCaptionsReader, KarpathyCocoReader, SourceError


def _read_all(reader, batch_size=2):
    batches = list(reader.iter_batches(batch_size))
    rows = pl.concat([b.rows for b in batches])
    bad = pl.concat([b.quarantine for b in batches])
    return batches, rows, bad


def _coco(tmp_path, images, annotations):
    path = tmp_path / "captions_train2014.json"
    path.write_text(json.dumps({
        "info": {"year": 2014}, "licenses": [],
        "images": images, "annotations": annotations,
    }))
    return path


IMAGES = [
    {"id": 9, "file_name": "COCO_train2014_000000000009.jpg", "width": 640, "height": 480, "license": 3},
    {"id": 25, "file_name": "COCO_train2014_000000000025.jpg", "width": 640, "height": 426, "license": 2},
]


def test_official_captions_become_rows_in_bounded_batches(tmp_path):
    anns = [
        {"id": 48, "image_id": 9, "caption": "Closeup of bins of food that include broccoli and bread."},
        {"id": 67, "image_id": 9, "caption": "A meal is presented in brightly colored plastic trays."},
        {"id": 126, "image_id": 25, "caption": "A giraffe eating food from the top of the tree."},
    ]
    batches, rows, bad = _read_all(CocoCaptionsReader(_coco(tmp_path, IMAGES, anns)))
    assert [b.records for b in batches] == [2, 1]
    assert bad.height == 0
    assert rows["source_record_id"].to_list() == ["48", "67", "126"]
    assert rows["image_path"].to_list()[2] == "COCO_train2014_000000000025.jpg"
    assert rows["task"].unique().to_list() == ["caption"]
    assert rows["answer_en"].null_count() == 3


def test_example_id_depends_on_record_id_not_position(tmp_path):
    a = {"id": 48, "image_id": 9, "caption": "A caption."}
    b = {"id": 67, "image_id": 9, "caption": "Another caption."}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _, first, _ = _read_all(CocoCaptionsReader(_coco(tmp_path / "one", IMAGES, [a, b])))
    _, second, _ = _read_all(CocoCaptionsReader(_coco(tmp_path / "two", IMAGES, [b, a])))
    ids1 = dict(zip(first["source_record_id"], first["example_id"]))
    ids2 = dict(zip(second["source_record_id"], second["example_id"]))
    assert ids1 == ids2 and len(set(ids1.values())) == 2


@pytest.mark.parametrize(
    "bad_ann, field, reason",
    [
        ({"id": 2, "image_id": 9}, "annotations.caption", "missing required field"),
        ({"id": 2, "image_id": 9, "caption": 17}, "annotations.caption", "expected str, got int"),
        ({"id": 2, "image_id": 9, "caption": "   "}, "annotations.caption", "empty text"),
        ({"id": "2", "image_id": 9, "caption": "x"}, "annotations.id", "expected int, got str"),
        ({"id": 1, "image_id": 9, "caption": "dupe"}, "annotations.id", "duplicate annotation id 1"),
        ({"id": 2, "image_id": 77, "caption": "x"}, "annotations.image_id", "image 77 is not listed in 'images'"),
    ],
)
def test_bad_caption_records_are_quarantined_with_field_and_reason(tmp_path, bad_ann, field, reason):
    good = {"id": 1, "image_id": 9, "caption": "A fine caption."}
    path = _coco(tmp_path, IMAGES, [good, bad_ann, {"id": 3, "image_id": 25, "caption": "Also fine."}])
    _, rows, bad = _read_all(CocoCaptionsReader(path))
    assert rows["source_record_id"].to_list() == ["1", "3"]  # nothing else lost
    assert bad.height == 1
    q = bad.row(0, named=True)
    assert (q["field"], q["reason"], q["record_index"]) == (field, reason, 1)
    assert q["source_file"] == path.name
    assert json.loads(q["raw"]) == bad_ann


@pytest.mark.parametrize("file_name", ["../../etc/passwd", "/abs/x.jpg", "a/../../x.jpg", "C:\\x.jpg"])
def test_image_path_escaping_root_is_quarantined(tmp_path, file_name):
    images = IMAGES + [{"id": 30, "file_name": file_name}]
    anns = [{"id": 1, "image_id": 9, "caption": "ok"}, {"id": 2, "image_id": 30, "caption": "escaping"}]
    _, rows, bad = _read_all(CocoCaptionsReader(_coco(tmp_path, images, anns)))
    assert rows.height == 1
    fields = sorted(bad["field"].to_list())
    assert fields == ["annotations.image_id", "images.file_name"]
    assert "escapes the image root" in bad.filter(pl.col("field") == "images.file_name")["reason"][0]


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "captions_broken.json"
    path.write_text('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1,')
    with pytest.raises(SourceError, match="captions_broken.json: not valid JSON"):
        list(CocoCaptionsReader(path).iter_batches())


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="source file not found"):
        CocoCaptionsReader(tmp_path / "nope.json")


def test_karpathy_split_file_selects_splits(tmp_path):
    def image(cocoid, split, sentids, filepath="val2014"):
        return {
            "filepath": filepath, "filename": f"COCO_{filepath}_{cocoid:012d}.jpg", "imgid": cocoid,
            "split": split, "cocoid": cocoid, "sentids": sentids,
            "sentences": [{"tokens": ["a"], "raw": f"Caption {s}.", "imgid": cocoid, "sentid": s} for s in sentids],
        }

    data = {"dataset": "coco", "images": [
        image(1, "train", [10, 11], "train2014"), image(2, "restval", [20]), image(3, "test", [30]),
        image(4, "val", [40]),
    ]}
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(data))
    _, rows, bad = _read_all(KarpathyCocoReader(path))
    assert rows["source_record_id"].to_list() == ["10", "11", "20"]
    assert rows["image_path"].to_list()[0] == "train2014/COCO_train2014_000000000001.jpg"
    assert bad.height == 0
    _, rows, _ = _read_all(KarpathyCocoReader(path, splits=("test",)))
    assert rows["text_en"].to_list() == ["Caption 30."]


def test_karpathy_bad_sentence_is_quarantined(tmp_path):
    data = {"images": [{"filepath": "val2014", "filename": "x.jpg", "split": "train", "cocoid": 5,
                        "sentences": [{"raw": "", "sentid": 1}, {"raw": "Good.", "sentid": 2}]}]}
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(data))
    _, rows, bad = _read_all(KarpathyCocoReader(path))
    assert rows["text_en"].to_list() == ["Good."]
    assert bad.row(0, named=True)["field"] == "images.sentences.raw"

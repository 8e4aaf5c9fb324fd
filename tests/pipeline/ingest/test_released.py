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


def _three_roots(tmp_path):
    """The release's three image roots: web CapFilt images, COCO, ImageNet train (each in its own folder)."""
    web, coco, imagenet = tmp_path / "web-images", tmp_path / "coco" / "train2014", tmp_path / "imagenet" / "train"
    for path in (web / "00000" / "000000001.jpg", coco / "COCO_train2014_000000000009.jpg",
                 imagenet / "n01440764" / "n01440764_10026.JPEG"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    records = [
        {"context": "Caption the image.", "label": "A dog on a lawn.", "image_id": "00000/000000001.jpg"},
        {"context": "Caption the image in English.", "label": "A dog runs.",
         "image_id": "COCO_train2014_000000000009.jpg"},
        {"context": "What is in the image? Answer briefly in English.", "label": "tench",
         "image_id": "n01440764/n01440764_10026.JPEG"},
        {"context": "Caption the image.", "label": "Nothing here.", "image_id": "00000/missing.jpg"},
    ]
    path = tmp_path / "task_mix_v2_mt.json"
    path.write_text(json.dumps(records))
    return path, [web, coco, imagenet]


def test_several_image_roots_tried_in_order(tmp_path):
    from pathlib import Path

    from pipeline.ingest.released import ReleasedMblipSource

    path, roots = _three_roots(tmp_path)
    source = ReleasedMblipSource.model_validate({"type": "mblip_released", "path": str(path), "language": "en",
                                                 "images": [str(r) for r in roots]})
    assert source.images_root == str(tmp_path.resolve())
    batches = list(source.open_reader(tmp_path).iter_batches(10))
    rows, bad = pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])
    assert rows["image_path"].to_list() == ["web-images/00000/000000001.jpg",
                                           "coco/train2014/COCO_train2014_000000000009.jpg",
                                           "imagenet/train/n01440764/n01440764_10026.JPEG"]
    assert all((Path(source.images_root) / p).is_file() for p in rows["image_path"])
    [reason] = bad["reason"].to_list()
    assert "under none of the image folders" in reason and str(roots[0]) in reason

    by_prefix = ReleasedMblipSource.model_validate({
        "type": "mblip_released", "path": str(path), "language": "en",
        "images": {"COCO_": str(roots[1]), "n0": str(roots[2]), "": str(roots[0])}})
    batches = list(by_prefix.open_reader(tmp_path).iter_batches(10))
    rows = pl.concat([b.rows for b in batches])
    assert rows["image_path"].to_list()[:3] == ["web-images/00000/000000001.jpg",
                                               "coco/train2014/COCO_train2014_000000000009.jpg",
                                               "imagenet/train/n01440764/n01440764_10026.JPEG"]


def test_the_run_records_the_common_root_and_the_export_finds_every_image(tmp_path, tiny_model_dir):
    from pathlib import Path

    import yaml

    from pipeline.build import build_dataset
    from pipeline.config import load_config
    from pipeline.export import export_dataset

    path, roots = _three_roots(tmp_path)
    config = {"sources": [{"type": "mblip_released", "path": path.name, "language": "en",
                           "images": [str(r.relative_to(tmp_path)) for r in roots]}],
              "run": {"languages": ["en"]}, "translation": {"model": str(tiny_model_dir)}, "output": {"dir": "out"}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))  # relative folders resolve against the config
    manifest = build_dataset(load_config(tmp_path / "run.yaml"))
    assert manifest["image_roots"] == {"mblip_released": str(tmp_path.resolve())}
    assert manifest["totals"]["kept"] == 3 and manifest["totals"]["quarantined"] == 1
    export_dataset(tmp_path / "out", tmp_path / "exp", formats=("mblip",))
    records = json.loads((tmp_path / "exp" / "mblip" / "en.json").read_text())
    assert len(records) == 3 and all(Path(r["image_id"]).is_file() for r in records)

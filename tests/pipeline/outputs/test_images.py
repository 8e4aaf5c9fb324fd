"""``output.images: embed``: the kept shards carry each row's image as a ``datasets.Image`` column declared in
the card, ``datasets.load_dataset(OUT)`` yields PIL images, and a shared image is stored once per row group."""

import io
import json
import random

import polars as pl
import pyarrow.parquet as pq
import pytest

from pipeline.card.metadata import dataset_features, split_front_matter
from pipeline.outputs.images import IMAGE_COLUMN
from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord
from pipeline.schema import ROW_SCHEMA


def _images(root, frame, seed=0):
    """A real JPEG (noise: it does not compress) at every image path of ``frame``; their bytes by path."""
    from PIL import Image

    rng = random.Random(seed)
    written = {}
    for rel in sorted(set(frame["image_path"].to_list())):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.frombytes("RGB", (96, 96), rng.randbytes(96 * 96 * 3)).save(path, "JPEG")
        written[rel] = path.read_bytes()
    return written


def _output(tmp_path, make_processed, embed=True, layout=ShardLayout(1000, 0, 1000)):
    paths, counts = make_processed(tmp_path / "work", n_rows=120, langs=("de",))
    rows = pl.concat([pl.read_parquet(p) for p in paths])
    images = _images(tmp_path / "images", rows)
    record = RunRecord(config_hash="t", sources={"coco_captions": "coco_captions", "vqav2": "vqav2"},
                       image_roots={"coco_captions": str(tmp_path / "images"), "vqav2": str(tmp_path / "images")})
    out = tmp_path / ("embed" if embed else "paths")
    manifest = write_outputs(out, paths, [], record, ingest_counts=counts, layout=layout, embed_images=embed)
    return out, manifest, images


def test_kept_shards_carry_their_images_and_load_dataset_yields_pil_images(tmp_path, make_processed):
    datasets = pytest.importorskip("datasets")
    out, manifest, images = _output(tmp_path, make_processed)
    assert manifest["images"] == "embed"
    kept = [f for f in manifest["files"] if f["split"] == "kept"]
    table = pq.read_table(out / kept[0]["path"])
    for row in table.select(["image_path", IMAGE_COLUMN]).to_pylist():
        assert row[IMAGE_COLUMN] == {"bytes": images[row["image_path"]], "path": row["image_path"]}
    rejects = [f for f in manifest["files"] if f["split"] == "rejected"]
    assert IMAGE_COLUMN not in pq.read_schema(out / rejects[0]["path"]).names  # only the training rows

    meta, _ = split_front_matter((out / "README.md").read_text())
    info = {c["config_name"]: c["features"] for c in meta["dataset_info"]}
    assert info["default"][-1] == {"name": "image", "dtype": "image"}
    # every other declared feature is what `datasets` reads from the shard's Arrow schema
    schema = pq.read_schema(out / kept[0]["path"])
    found = datasets.Features.from_arrow_schema(schema.remove(schema.get_field_index(IMAGE_COLUMN)))
    assert info["default"][:-1] == found._to_yaml_list() == dataset_features(ROW_SCHEMA)

    loaded = datasets.load_dataset(str(out), "default", split="train", cache_dir=str(tmp_path / "hf-cache"))
    first = loaded[0]
    assert type(first["image"]).__module__.startswith("PIL.")
    from PIL import Image

    assert first["image"].tobytes() == Image.open(io.BytesIO(images[first["image_path"]])).tobytes()
    assert len(loaded) == manifest["totals"]["kept"]


def test_a_shared_image_is_stored_once_per_row_group(tmp_path, make_processed):
    out, manifest, images = _output(tmp_path, make_processed)
    (kept,) = [f for f in manifest["files"] if f["split"] == "kept"]
    paths = pq.read_table(out / kept["path"], columns=["image_path"]).column(0).to_pylist()
    distinct = sum(len(images[p]) for p in set(paths))
    every_row = sum(len(images[p]) for p in paths)
    assert every_row > 2.5 * distinct  # rows share images (5 captions or questions per image)
    plain = out.parent / "paths" / kept["path"]
    _output(tmp_path, make_processed, embed=False)
    image_bytes = kept["bytes"] - plain.stat().st_size
    print(json.dumps({"rows": len(paths), "distinct_image_bytes": distinct, "image_bytes_per_row_sum": every_row,
                      "shard_growth": image_bytes}))
    # once per distinct image (zstd even shares the JPEG headers), far from once per row
    assert 0.6 * distinct < image_bytes < 1.1 * distinct < every_row / 2.5

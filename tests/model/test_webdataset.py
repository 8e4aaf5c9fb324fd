"""The webdataset export (tar shards of {key}.jpg + {key}.json) and the trainer reading either layout, local or
at an s3:// URL (a real S3-protocol server on 127.0.0.1)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from model.data import OPTIONAL_COLUMNS, ROW_COLUMNS, iter_rows, read_manifest
from pipeline.export_webdataset import WDS_COLUMNS, export_webdataset


def test_the_tars_hold_a_jpg_and_a_json_per_kept_row(demo_output, tmp_path):
    assert set(ROW_COLUMNS + OPTIONAL_COLUMNS) <= set(WDS_COLUMNS)
    result = export_webdataset(demo_output, tmp_path, shard_rows=50)
    manifest = json.loads((demo_output / "manifest.json").read_text())
    kept = sum(f["rows"] for f in manifest["files"] if f["split"] == "kept")
    assert sum(f["rows"] for f in result["files"]) == kept and len(result["files"]) == -(-kept // 50)
    first = tmp_path / "webdataset" / result["files"][0]["path"]
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert names[0].endswith(".jpg") and names[1] == names[0].replace(".jpg", ".json")
        row = json.loads(tar.extractfile(names[1]).read())
        image = tar.extractfile(names[0]).read()
    root = manifest["image_roots"][row["source"]]
    assert names[0] == f"{row['example_id']}.jpg"
    assert image == (Path(root) / row["image_path"]).read_bytes()
    from PIL import Image

    Image.open(io.BytesIO(image)).verify()  # a real image
    again = export_webdataset(demo_output, tmp_path, shard_rows=50)
    assert [f["sha256"] for f in again["files"]] == [f["sha256"] for f in result["files"]]  # deterministic


def _rows(data):
    return list(iter_rows([f.path for f in data.files]))


def test_the_trainer_reads_the_same_rows_and_images_from_either_layout(demo_output, tmp_path):
    from model.data import load_row_image, row_to_example

    export_webdataset(demo_output, tmp_path, shard_rows=40)
    folders, tars = read_manifest(demo_output), read_manifest(tmp_path / "webdataset")
    assert [f.rows for f in tars.files] and sum(f.rows for f in tars.files) == folders.rows
    by_id = {r["example_id"]: r for r in _rows(folders)}
    from_tars = _rows(tars)
    assert sorted(by_id) == sorted(r["example_id"] for r in from_tars)
    for row in from_tars[:10]:
        plain = by_id[row["example_id"]]
        assert {k: row[k] for k in ROW_COLUMNS} == {k: plain[k] for k in ROW_COLUMNS}
        a = load_row_image(row, row_to_example(row, tars.image_roots))
        b = load_row_image(plain, row_to_example(plain, folders.image_roots))
        assert a.tobytes() == b.tobytes()


def test_training_from_webdataset_shards_at_an_s3_url(make_config, demo_output, tmp_path, s3_server):
    from model.train import train

    export_webdataset(demo_output, tmp_path, shard_rows=40)
    url = f"s3://{s3_server.bucket()}/wds"
    s3_server.fs.put(str(tmp_path / "webdataset") + "/", url, recursive=True)
    data = read_manifest(url)
    assert all(str(f.path).startswith("s3://") for f in data.files)
    cfg = make_config(data={"manifest": url}, train={"max_steps": 2})
    result = train(cfg)
    assert result.step == 2 and result.counts.get("unreadable_images", 0) == 0


def test_a_tar_without_json_is_an_error_naming_it(tmp_path):
    from model.wds import iter_tar_rows

    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("k1.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ValueError, match="bad.tar: sample 'k1' has no .json"):
        list(iter_tar_rows(path))

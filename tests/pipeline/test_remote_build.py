"""A whole build with its sources and its output at s3:// URLs (a real S3-protocol server on 127.0.0.1):
annotation files read through local copies, the image root checked by one listing, the output built
locally and uploaded; an unchanged rerun uploads nothing; ``mblip verify`` checks the URL."""

import json

import pytest
import yaml

from mblip.cli import main
from pipeline.build import build_dataset
from pipeline.config import PipelineConfig, load_config
from pipeline.demo.data import demo_paths


def test_build_from_and_to_s3_and_an_unchanged_rerun_uploads_nothing(tmp_path, demo_root, tiny_model_dir,
                                                                      s3_server, capsys):
    paths = demo_paths(demo_root)
    fs, bucket = s3_server.fs, s3_server.bucket()
    src = f"s3://{bucket}/sources"
    fs.put_file(str(paths.captions), f"{src}/captions_train2014.json")
    fs.put(str(paths.images / "train2014") + "/", f"{src}/images/train2014", recursive=True)
    # one caption names an image that is not in the bucket: quarantined by the remote listing
    data = json.loads(paths.captions.read_text())
    missing = data["images"][0]["file_name"]
    fs.rm_file(f"{src}/images/train2014/{missing}")
    out_url = f"s3://{bucket}/mblip/demo"
    config = {
        "sources": [{"type": "coco_captions", "annotations": f"{src}/captions_train2014.json",
                     "images": f"{src}/images/train2014"}],
        "run": {"languages": ["de", "fr"], "chunk_rows": 40},
        "translation": {"model": str(tiny_model_dir), "compute_type": "int8"},
        "filter": {"min_bt_chrf": 1.0},
        "output": {"dir": out_url, "local_dir": str(tmp_path / "local"), "shard_rows": 40},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    cfg = load_config(tmp_path / "run.yaml")
    assert cfg.output.url == out_url and cfg.sources[0].images == f"{src}/images/train2014"

    manifest = build_dataset(cfg)
    assert manifest["image_roots"] == {"coco_captions": f"{src}/images/train2014"}
    remote = json.loads(fs.cat_file(f"{out_url}/manifest.json"))
    assert remote == manifest
    assert not fs.exists(f"{out_url}/_work")  # the work folder stays local
    n_missing = sum(a["image_id"] == data["images"][0]["id"] for a in data["annotations"])
    assert manifest["totals"]["quarantined"] == n_missing > 0

    s3_server.log.clear()
    again = build_dataset(cfg)  # its manifest records the rerun (every chunk reused), the output is the same
    assert again["run"]["chunks"]["done"] == manifest["run"]["chunks"]["process"]
    assert s3_server.requests("PUT", bucket) == 0  # an unchanged rerun uploads nothing
    assert json.loads(fs.cat_file(f"{out_url}/manifest.json")) == manifest
    assert not any(f'"GET /{bucket}/sources/captions_train2014.json' in line for line in s3_server.log)

    assert main(["verify", out_url]) == 0
    assert "OK" in capsys.readouterr().out


def test_every_file_field_of_every_source_type_may_be_a_url():
    from pipeline.ingest.registry import PATH_FIELDS
    from pipeline.ingest.source import URL_FIELDS

    # POPE's annotation files (small, read once) must be local: a URL there is an error that says so
    assert set(PATH_FIELDS) - {"pope"} <= set(URL_FIELDS)
    with pytest.raises(ValueError, match="pope: s3://bucket/pope is a URL; POPE's annotation files must be local"):
        PipelineConfig.model_validate({"sources": [{"type": "aokvqa", "path": "a.json", "images": ".",
                                                    "pope": "s3://bucket/pope"}]})

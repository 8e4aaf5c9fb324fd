"""The generate flow in Prefect's embedded local mode (no server to install or start)."""

import json
import shutil

import polars as pl
import yaml

from pipeline.demo import DEMO_CONFIG



def test_generate_flow_runs_locally_on_demo_data(tmp_path, demo_root, tiny_model_dir):
    from flows.generate import generate

    shutil.copytree(demo_root, tmp_path / "demo-data")
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["translation"]["model"] = str(tiny_model_dir)
    config["filter"]["min_bt_chrf"] = 1.0
    config["run"]["chunk_rows"] = 40
    config_path = tmp_path / "demo.yaml"
    config_path.write_text(yaml.safe_dump(config))

    manifest = generate(str(config_path))

    out = tmp_path / "dataset"
    assert json.loads((out / "manifest.json").read_text())["files"] == manifest["files"]
    stats = json.loads((out / "stats.json").read_text())
    # 12 demo images: 5 captions and 3 questions each
    assert stats["sources"]["coco_captions"]["records"] == 60
    assert stats["sources"]["vqav2"]["records"] == 36
    totals = stats["totals"]
    assert totals["records"] == totals["kept"] + totals["rejected"] + totals["quarantined"]
    kept = [out / f["path"] for f in manifest["files"] if f["split"] == "kept"]
    rejected = [out / f["path"] for f in manifest["files"] if f["split"] == "rejected"]
    assert sum(pl.read_parquet(p).height for p in kept + rejected) == 96
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["translation"]["model"] == str(tiny_model_dir)

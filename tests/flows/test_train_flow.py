"""The train flow in Prefect's embedded local mode: a data output (manifest) in, a checkpoint out."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_train_flow_trains_from_a_manifest(tmp_path, demo_root):
    import torch

    from flows.train import train_flow
    from model.demo.trainer import write_english_demo_output
    from model.tiny import build_tiny_blip2, build_tiny_mt5

    torch.set_num_threads(1)
    data = write_english_demo_output(demo_root, tmp_path / "data")
    config = yaml.safe_load((REPO / "model" / "demo" / "train_tiny.yaml").read_text())
    config["model"] |= {"blip2": str(build_tiny_blip2(tmp_path / "blip2")),
                        "llm": str(build_tiny_mt5(tmp_path / "mt5"))}
    config["data"] |= {"manifest": "not-used-the-flow-passes-one", "num_workers": 0}
    config["train"] |= {"output_dir": str(tmp_path / "run"), "eval_every": 0, "save_every": 0}
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config))

    summary = train_flow(str(config_path), manifest=str(data), max_steps=2)

    assert summary["step"] == 2 and Path(summary["checkpoint"]).name == "step-0000002"
    assert json.loads((Path(summary["checkpoint"]) / "state.json").read_text())["step"] == 2
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["data"]["manifest"] == str(data) and resolved["train"]["max_steps"] == 2

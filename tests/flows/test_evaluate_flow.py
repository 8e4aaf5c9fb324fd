"""The evaluate flows in Prefect's embedded mode: train, then score on XVNLI files in the official layout;
the per-language table artifact is published."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _xvnli(root: Path) -> tuple[Path, Path]:
    from PIL import Image

    images = root / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (40, 30), (220, 30, 30)).save(images / "1000092795.jpg")
    for lang in ("en", "fr"):
        path = root / "data" / "annotations" / lang / "test.jsonl"
        path.parent.mkdir(parents=True)
        rows = [
            {"Flikr30kID": "1000092795", "pairID": f"{lang}-{i}", "gold_label": label, "sentence2": "It is red."}
            for i, label in enumerate(("entailment", "contradiction"))
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "data", images


def test_train_and_evaluate_publishes_a_per_language_artifact(tmp_path, demo_root):
    import torch
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.evaluate import train_and_evaluate
    from model.demo.trainer import write_english_demo_output
    from model.tiny import build_tiny_blip2, build_tiny_mt5

    torch.set_num_threads(1)
    manifest = write_english_demo_output(demo_root, tmp_path / "train-data")
    config = yaml.safe_load((REPO / "model" / "demo" / "train_tiny.yaml").read_text())
    config["model"] |= {
        "blip2": str(build_tiny_blip2(tmp_path / "blip2")),
        "llm": str(build_tiny_mt5(tmp_path / "mt5")),
    }
    config["data"] |= {"manifest": str(manifest), "num_workers": 0}
    config["train"] |= {"output_dir": str(tmp_path / "run"), "eval_every": 0, "save_every": 0}
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config))
    data, images = _xvnli(tmp_path / "xvnli")

    summary = train_and_evaluate(
        str(config_path),
        [{"benchmark": "xvnli", "data": str(data), "images": str(images), "languages": ["en", "fr"]}],
        max_steps=1,
    )

    out = Path(summary["train"]["checkpoint"]) / "eval" / "xvnli.json"
    result = json.loads(out.read_text())
    assert list(result["languages"]) == ["en", "fr"] and result["scored"] == 4
    assert summary["evaluations"]["xvnli"]["languages"].keys() == {"en", "fr"}
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["eval-xvnli"])))
    assert artifacts
    table = artifacts[0].data if isinstance(artifacts[0].data, list) else json.loads(artifacts[0].data)
    assert [row["language"] for row in table][:2] == ["en", "fr"] and table[2]["language"].startswith("mean")


def test_prefect_yaml_deploys_train_and_evaluate():
    from flows.evaluate import train_and_evaluate
    from flows.serve import load_deployment_specs

    spec = {s["name"]: s for s in load_deployment_specs()}["after-training"]
    assert spec["entrypoint"] == "flows/evaluate.py:train_and_evaluate"
    assert set(spec["parameters"]) <= set(train_and_evaluate.parameters.properties)
    assert (REPO / spec["parameters"]["config"]).is_file()
    assert all({"benchmark", "data", "images"} <= set(e) for e in spec["parameters"]["evaluations"])


def test_the_artifact_rows_carry_a_benchmarks_extra_fields():
    """CHAIR's rows show CHAIRi and the mention count beside CHAIRs (the score), as the printed table does."""
    from flows.evaluate import language_rows

    result = {"metric": "chair", "scored": 2, "mean": 50.0, "mean_over": ["en"],
              "languages": {"en": {"score": 50.0, "n": 2, "chair_s": 50.0, "chair_i": 25.0, "mentions": 4}}}
    rows = language_rows(result)
    assert rows[0] == {"language": "en", "items": 2, "score": 50.0, "chair_i": 25.0, "mentions": 4}
    assert rows[1] == {"language": "mean (en)", "items": 2, "score": 50.0, "chair_i": None, "mentions": None}

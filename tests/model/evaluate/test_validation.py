"""Benchmark validation inside the trainer: per-language scores in metrics.jsonl, best checkpoint kept,
training itself unchanged, off by default on CPU."""

from __future__ import annotations

import json

import pytest


def _slices(benchmark_files):
    xvnli, xvnli_images, _ = benchmark_files("xvnli")
    xgqa, xgqa_images, _ = benchmark_files("xgqa")
    return [
        {"benchmark": "xvnli", "data": str(xvnli), "images": str(xvnli_images), "languages": ["en", "fr"], "limit": 2},
        {"benchmark": "xgqa", "data": str(xgqa), "images": str(xgqa_images), "languages": ["de"], "limit": 1},
    ]


def test_validation_logs_every_language_and_keeps_the_best_checkpoint(make_config, benchmark_files, tmp_path):
    from model.train import train

    plain = train(make_config(train={"max_steps": 3, "output_dir": str(tmp_path / "plain")}))
    cfg = make_config(
        train={"max_steps": 3, "output_dir": str(tmp_path / "run")},
        validation={"benchmarks": _slices(benchmark_files), "enabled": True, "every": 1, "select": "xvnli/mean"},
    )
    result = train(cfg)
    assert result.losses == pytest.approx(plain.losses, rel=1e-6)  # validation does not disturb training

    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    validations = [r for r in records if "validation" in r]
    assert [r["step"] for r in validations] == [1, 2, 3]
    for record in validations:
        assert set(record["validation"]) == {"xvnli/en", "xvnli/fr", "xvnli/mean", "xgqa/de", "xgqa/mean"}
        assert record["validation"]["xvnli/mean"] == record["validation"]["xvnli/fr"]  # mean leaves English out
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    values = [r["validation"]["xvnli/mean"] for r in validations]
    assert best["value"] == max(values) and best["step"] == validations[values.index(max(values))]["step"]
    state = json.loads((tmp_path / "run" / "best" / "state.json").read_text())
    assert state["step"] == best["step"] and (tmp_path / "run" / "best" / "trainable.safetensors").is_file()


def test_validation_is_off_by_default_on_cpu_and_checks_the_selected_score(make_config, benchmark_files):
    import torch

    from model.build import build_model
    from model.evaluate.validation import make_validator

    cfg = make_config(validation={"benchmarks": _slices(benchmark_files)})
    assembled = build_model(cfg.model, cfg.lora, "full", torch.device("cpu"))
    assert make_validator(cfg, assembled, torch.device("cpu")) is None
    bad = make_config(validation={"benchmarks": _slices(benchmark_files), "enabled": True, "every": 1,
                                  "select": "xm3600/de"})
    with pytest.raises(ValueError, match="validation.select 'xm3600/de' names no configured benchmark"):
        make_validator(bad, assembled, torch.device("cpu"))

"""train.log_with: the tiny model's run logged to TensorBoard (event files read back) and W&B (offline mode),
with the same values as metrics.jsonl."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from model.trackers import flat_config


def _metrics(output_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(output_dir) / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_event_files_hold_the_runs_metrics(make_config):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from model.train import train

    cfg = make_config(train={"max_steps": 3, "log_every": 1, "eval_every": 3, "log_with": ["tensorboard"],
                             "run_name": "tiny-tb"})
    train(cfg)
    events = EventAccumulator(str(Path(cfg.train.output_dir) / "tensorboard" / "tiny-tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    records = _metrics(cfg.train.output_dir)
    losses = [r for r in records if "loss" in r]
    assert {"loss", "samples_per_s", "val_loss"} <= tags
    assert {k for k in losses[0] if k.startswith(("lr_", "loss_"))} <= tags  # per-parameter-group lr, per-task loss
    assert [(e.step, e.value) for e in events.Scalars("loss")] == \
        [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in losses]
    (val,) = [r for r in records if "val_loss" in r]
    assert events.Scalars("val_loss")[0].value == pytest.approx(val["val_loss"], rel=1e-6)


def wandb_records(path: Path):
    """The records of an offline run's ``run-*.wandb`` file, parsed by wandb's own protobuf ``Record``. The file
    is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of chunks (crc32, 2-byte length, type: 1 full,
    2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunks = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunks += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def test_wandb_offline_run_holds_the_name_config_and_metrics(make_config, monkeypatch):
    pytest.importorskip("wandb")
    from model.train import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_config(train={"max_steps": 2, "log_every": 1, "log_with": ["wandb"], "run_name": "tiny-wandb"})
    train(cfg)
    (path,) = (Path(cfg.train.output_dir) / "wandb").glob("offline-run-*/run-*.wandb")
    for _ in range(100):  # wandb's service process may still be writing the run's last records
        records = list(wandb_records(path))
        if records and records[-1].WhichOneof("record_type") == "exit":
            break
        time.sleep(0.1)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == "tiny-wandb"
    config = {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for u in r.config.update}
    assert config["train.run_name"] == "tiny-wandb" and config["model.llm"] == cfg.model.llm
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item} for r in records
               if r.WhichOneof("record_type") == "history"]
    losses = [r for r in _metrics(cfg.train.output_dir) if "loss" in r]
    assert [(h["_step"], h["loss"]) for h in history] == [(r["step"], pytest.approx(r["loss"])) for r in losses]
    assert all("samples_per_s" in h and any(k.startswith("lr_") for k in h) for h in history)


def test_the_config_is_flattened_to_scalars():
    assert flat_config({"train": {"lr": 0.1, "log_with": ["wandb"], "name": None}}) == \
        {"train.lr": 0.1, "train.log_with": '["wandb"]', "train.name": "null"}

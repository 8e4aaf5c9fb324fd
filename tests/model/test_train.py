"""Training on tiny real models: loss goes down, resume is exact, both LLM families, projection stage."""

from __future__ import annotations

import json
import math

import pytest
import torch

from model.train import build_scheduler, list_checkpoints, train


def test_loss_decreases(make_config):
    cfg = make_config(train={"max_steps": 24, "batch_size": 8}, optim={"warmup_steps": 2})
    result = train(cfg)
    first, last = sum(result.losses[:4]) / 4, sum(result.losses[-4:]) / 4
    assert last < first - 0.5, result.losses
    assert list_checkpoints(cfg.train.output_dir)[-1].name == "step-0000024"
    with open(f"{cfg.train.output_dir}/metrics.jsonl") as handle:
        metrics = [json.loads(line) for line in handle]
    assert {"loss", "samples_per_s", "lr_lora", "lr_qformer"} <= metrics[0].keys()


def test_resume_gives_the_same_next_step_loss(make_config, tmp_path):
    # Dropout is on (LoRA 0.05, Q-Former 0.1) and images are augmented: exactness needs the RNG
    # state, the data position and the optimizer/scheduler state to come back.
    common = dict(optim={"warmup_steps": 1}, data={"num_workers": 1, "crop_scale": (0.5, 1.0)})
    straight = train(make_config(train={"max_steps": 4, "output_dir": str(tmp_path / "a")}, **common))
    first = train(make_config(train={"max_steps": 4, "output_dir": str(tmp_path / "b")}, **common), stop_after=2)
    assert first.step == 2 and first.checkpoint.name == "step-0000002"
    resumed = train(make_config(train={"max_steps": 4, "output_dir": str(tmp_path / "b")}, **common))
    assert resumed.step == 4 and len(resumed.losses) == 2
    assert first.losses == pytest.approx(straight.losses[:2], abs=1e-6)
    assert resumed.losses == pytest.approx(straight.losses[2:], abs=1e-6)


def test_decoder_only_llm_trains_with_validation_and_checkpointing(make_config):
    cfg = make_config(llm="bloom", train={"max_steps": 3, "eval_every": 3, "global_batch": 16},
                      model={"gradient_checkpointing": True})
    result = train(cfg)
    assert len(result.losses) == 3 and all(math.isfinite(x) for x in result.losses)
    assert len(result.val_losses) == 1 and math.isfinite(result.val_losses[0][1])


def test_projection_stage_changes_only_the_projection(make_config, tiny_dirs):
    from safetensors.torch import load_file

    cfg = make_config(train={"stage": "projection", "max_steps": 2})
    result = train(cfg)
    saved = load_file(str(result.checkpoint / "trainable.safetensors"))
    assert set(saved) == {"language_projection.weight", "language_projection.bias"}
    before = load_file(str(tiny_dirs["blip2"] / "model.safetensors"))["language_projection.weight"]
    assert not torch.equal(saved["language_projection.weight"], before)
    # The full stage can start from it.
    full = make_config(train={"max_steps": 1, "init_from": str(result.checkpoint), "output_dir": cfg.train.output_dir + "-full"})
    assert train(full).step == 1


def test_schedule_warms_up_then_decays_to_the_floor():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [param], "lr": 1.0}])
    scheduler = build_scheduler(optimizer, warmup_steps=4, total_steps=12, min_lr_ratio=0.1)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)

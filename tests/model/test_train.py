"""Training on tiny real models: loss goes down, resume is exact, both LLM families, projection stage."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from model.checkpoint import list_checkpoints
from model.demo.trainer import kept_shard_entry
from model.train import build_scheduler, train


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
    full = make_config(train={"max_steps": 1, "init_from": str(result.checkpoint),
                              "output_dir": cfg.train.output_dir + "-full"})
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


class _Payload:
    """Pickles as a call to os.mkdir: loading it with full unpickling creates ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


def _record_files(checkpoint):
    """Record the checkpoint's files as they are now in its state.json, as if they had been saved so (a
    file replaced together with its record)."""
    from pipeline.io import sha256_file

    meta = json.loads((checkpoint / "state.json").read_text())
    for name in meta["files"]:
        meta["files"][name] = {"bytes": (checkpoint / name).stat().st_size, "sha256": sha256_file(checkpoint / name)}
    (checkpoint / "state.json").write_text(json.dumps(meta))


def test_training_state_loads_without_running_pickled_code(make_config, tmp_path):
    cfg = make_config(train={"max_steps": 2})
    checkpoint = train(cfg, stop_after=1).checkpoint
    state_file = checkpoint / "training_state.pt"
    assert set(torch.load(state_file, weights_only=True)) >= {"optimizer", "scheduler", "rng"}
    marker = tmp_path / "code-ran"
    state = torch.load(state_file, weights_only=True)
    torch.save({**state, "extra": _Payload(marker)}, state_file)
    _record_files(checkpoint)  # whoever can replace the file can replace its recorded sha256 too
    with pytest.raises(ValueError, match="training_state.pt holds more than tensors"):
        train(cfg)
    assert not marker.exists()


@pytest.mark.parametrize(("section", "changes", "message"), [
    ("data", {"num_workers": 1}, "data.num_workers was 0, now 1"),
    ("train", {"batch_size": 4}, "train.batch_size was 8, now 4"),
    ("train", {"global_batch": 16}, "train.global_batch was 8, now 16"),
])
def test_resume_refuses_a_change_that_would_move_the_data_stream(make_config, section, changes, message):
    cfg = make_config(train={"max_steps": 3})
    train(cfg, stop_after=1)
    sections = {"train": {"max_steps": 3}}
    sections[section] = sections.get(section, {}) | changes
    changed = make_config(**sections)
    with pytest.raises(ValueError, match=f"cannot resume .*{message}.*new train.output_dir"):
        train(changed)
    assert train(cfg).step == 3  # unchanged config: resumes


def test_a_missing_model_directory_fails_at_once_saying_how_to_make_it(make_config, tmp_path):
    from model.launch import launch_training

    missing = tmp_path / "not-built" / "tiny"
    cfg = make_config(model={"llm": str(missing / "mt5")})
    with pytest.raises(FileNotFoundError,
                       match=rf"model.llm: model directory {missing / 'mt5'} does not exist; "
                             rf"build the tiny models with `python -m model.tiny {missing}`"):
        train(cfg)
    other = make_config(model={"blip2": str(tmp_path / "models" / "blip2-flan-t5-xl")})
    with pytest.raises(FileNotFoundError, match="model.blip2: .* does not exist; download it"):
        train(other)
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    with pytest.raises(FileNotFoundError, match="python -m model.tiny"):
        launch_training(config_path, num_processes=2)  # before any process is started


def test_unreadable_images_are_reported_and_an_all_unreadable_batch_is_skipped(make_config, demo_output, tmp_path):
    import polars as pl

    rows = pl.read_parquet(demo_output / "data/en/part-00000.parquet")
    (tmp_path / "data/data/en").mkdir(parents=True)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg")
    broken = set(range(8)) | {10}  # the whole first batch, and one row of the second
    paths = [str(corrupt) if i in broken else p for i, p in enumerate(rows["image_path"].to_list())]
    rows.with_columns(image_path=pl.Series(paths)).write_parquet(tmp_path / "data/data/en/part-00000.parquet")
    manifest = json.loads((demo_output / "manifest.json").read_text())
    manifest["files"] = [kept_shard_entry(tmp_path / "data", "data/en/part-00000.parquet", "en", rows.height)]
    (tmp_path / "data/manifest.json").write_text(json.dumps(manifest))
    # No hold-out and a one-row shuffle buffer: batches follow the file order.
    cfg = make_config(data={"manifest": str(tmp_path / "data"), "val_fraction": 0.0, "shuffle_buffer": 1},
                      train={"max_steps": 2, "log_every": 1})
    result = train(cfg)
    assert result.step == 2 and all(math.isfinite(x) for x in result.losses)
    assert result.counts["unreadable_images"] == 9 and result.counts["skipped_batches"] == 1
    with open(f"{cfg.train.output_dir}/metrics.jsonl") as handle:
        last = [json.loads(line) for line in handle][-1]
    assert (last["unreadable_images"], last["skipped_batches"]) == (9, 1)


@pytest.mark.filterwarnings("ignore:For backward hooks to be called")
def test_backward_runs_outside_autocast_and_the_llm_forward_inside(make_config):
    seen = {"forward": set(), "backward": set()}

    def on_forward(module, args, output):
        # The LLM's layers (its top module's hook runs after the autocast region has closed).
        if type(module).__name__ in ("MT5Block", "MT5Attention", "MT5DenseGatedActDense"):
            seen["forward"].add(torch.is_autocast_enabled("cpu"))

    def on_backward(module, grad_input, grad_output):
        seen["backward"].add(torch.is_autocast_enabled("cpu"))

    handles = [torch.nn.modules.module.register_module_forward_hook(on_forward),
               torch.nn.modules.module.register_module_full_backward_hook(on_backward)]
    try:
        result = train(make_config(train={"max_steps": 1, "llm_autocast": "bf16"}))
    finally:
        for handle in handles:
            handle.remove()
    assert math.isfinite(result.losses[0])
    assert seen["forward"] == {True} and seen["backward"] == {False}


def test_paper_precision_trains_and_a_mismatch_the_validator_refuses_does_fail(make_config, tiny_dirs):
    """fp16 vision side (gradient scaler) over a float32 ViT and a bf16 LLM: what mBLIP ran, here on CPU.
    A half-precision ViT without vision autocast, which the config refuses, fails in the forward pass."""
    from model.build import build_model
    from model.config import TrainConfig

    cfg = make_config(train={"max_steps": 2, "vision_autocast": "fp16", "llm_autocast": "bf16"})
    result = train(cfg)
    assert len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)
    checkpoint_state = torch.load(result.checkpoint / "training_state.pt", weights_only=True)
    assert checkpoint_state["scaler"]["scale"] > 0  # the scaler was on and is saved

    raw = cfg.model_dump()
    raw["model"]["vision_dtype"] = "bfloat16"
    raw["train"]["vision_autocast"] = "no"
    unchecked = TrainConfig.model_construct(**{k: type(getattr(cfg, k)).model_construct(**v) for k, v in raw.items()})
    assembled = build_model(unchecked.model, unchecked.lora, "full", torch.device("cpu"))
    pixel = torch.zeros(1, 3, 32, 32)
    ids = torch.tensor([[assembled.image_token_index] * 8 + [5, 6, 1]])
    with pytest.raises(RuntimeError, match="must have the same dtype"):
        assembled.model(pixel_values=pixel, input_ids=ids, attention_mask=torch.ones_like(ids),
                        labels=torch.tensor([[5, 1]]))


def test_schedule_counts_only_the_rows_of_the_selected_tasks(make_config, demo_output):
    import polars as pl

    from model.data import is_validation

    frame = pl.read_parquet(demo_output / "data/en/part-00000.parquet")
    cfg = make_config(data={"tasks": ["caption"]}, train={"max_steps": None, "epochs": 1.0})
    captions = [r for r in frame.iter_rows(named=True)
                if r["task"] == "caption" and not is_validation(r["image_id"], cfg.data.val_fraction)]
    assert len(captions) < frame.height * (1 - cfg.data.val_fraction) - cfg.train.global_batch
    assert train(cfg).step == math.ceil(len(captions) / cfg.train.global_batch)

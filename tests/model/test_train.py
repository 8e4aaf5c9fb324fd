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


def _checkpoint_state(checkpoint):
    from safetensors.torch import load_file

    state = torch.load(checkpoint / "training_state.pt", weights_only=True)
    meta = json.loads((checkpoint / "state.json").read_text())
    meta.pop("files", None)  # the two files' sha256: their tensors are compared one by one here
    return load_file(str(checkpoint / "trainable.safetensors")), state, meta


def test_resume_continues_exactly_weights_optimizer_state_and_losses(make_config, tmp_path):
    """Two steps, a stop, three more steps: the same losses, trained tensors, optimizer, scheduler and RNG
    state and stream position as five uninterrupted steps, bit for bit. Dropout is on (LoRA 0.05, Q-Former
    0.1), images are augmented and a loader worker runs: exactness needs all of them to come back."""
    common = dict(optim={"warmup_steps": 1}, data={"num_workers": 1, "crop_scale": (0.5, 1.0)})
    straight = train(make_config(train={"max_steps": 5, "output_dir": str(tmp_path / "a")}, **common))
    first = train(make_config(train={"max_steps": 5, "output_dir": str(tmp_path / "b")}, **common), stop_after=2)
    assert first.step == 2 and first.checkpoint.name == "step-0000002"
    resumed = train(make_config(train={"max_steps": 5, "output_dir": str(tmp_path / "b")}, **common))
    assert resumed.step == 5 and len(resumed.losses) == 3
    assert first.losses + resumed.losses == straight.losses

    weights, state, meta = _checkpoint_state(resumed.checkpoint)
    weights_ref, state_ref, meta_ref = _checkpoint_state(straight.checkpoint)
    assert meta == meta_ref  # step, stream position, counters, dataset
    assert weights.keys() == weights_ref.keys() and all(torch.equal(weights[k], weights_ref[k]) for k in weights)
    optimizer, optimizer_ref = state["optimizer"], state_ref["optimizer"]
    assert optimizer["param_groups"] == optimizer_ref["param_groups"] and optimizer["state"].keys() == \
        optimizer_ref["state"].keys()
    for index, values in optimizer["state"].items():
        assert values.keys() == {"step", "exp_avg", "exp_avg_sq"}
        assert all(torch.equal(values[k], optimizer_ref["state"][index][k]) for k in values), index
    assert state["scheduler"] == state_ref["scheduler"]
    assert torch.equal(state["rng"]["torch"], state_ref["rng"]["torch"])


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


# Every setting that fixes the order of the training stream (model/checkpoint.py STREAM_KNOBS), as
# docs/training.md lists them: batch size, global batch, loader workers, seed, shuffle buffer, data selection.
STREAM_CHANGES = [
    ("data", {"num_workers": 1}, "data.num_workers was 0, now 1"),
    ("train", {"batch_size": 4}, "train.batch_size was 8, now 4"),
    ("train", {"global_batch": 16}, "train.global_batch was 8, now 16"),
    ("train", {"seed": 7}, "train.seed was 0, now 7"),
    ("data", {"shuffle_buffer": 64}, "data.shuffle_buffer was 256, now 64"),
    ("data", {"tasks": ["caption"]}, r"data.tasks was \[\], now \['caption'\]"),
    ("data", {"sources": ["coco_captions"]}, r"data.sources was \[\], now \['coco_captions'\]"),
    ("data", {"languages": ["en"]}, r"data.languages was \[\], now \['en'\]"),
    ("data", {"val_fraction": 0.1}, "data.val_fraction was 0.2, now 0.1"),
    # the two hold-outs exclude each other: moving to the row hold-out changes both
    ("data", {"val_fraction": 0.0, "val_rows": 5}, "data.val_rows was 0, now 5"),
]


def test_resume_refuses_every_change_that_would_move_the_data_stream(make_config):
    from model.checkpoint import STREAM_KNOBS, check_resume

    assert {(section, key) for section, changes, _ in STREAM_CHANGES for key in changes} == set(STREAM_KNOBS)
    cfg = make_config(train={"max_steps": 3})
    checkpoint = train(cfg, stop_after=1).checkpoint
    for section, changes, message in STREAM_CHANGES:
        sections = {"train": {"max_steps": 3}}
        sections[section] = sections.get(section, {}) | changes
        with pytest.raises(ValueError, match=f"cannot resume .*{message}.*new train.output_dir"):
            train(make_config(**sections))
    with pytest.raises(ValueError, match="cannot resume .*processes were 1, now 2"):  # `mblip train --gpus 2`
        check_resume(checkpoint, cfg, processes=2)
    assert [c.name for c in list_checkpoints(cfg.train.output_dir)] == ["step-0000001"]  # refused, untouched
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

"""What training refuses: shards that differ from the manifest, another dataset on resume, non-finite losses,
gradients and checkpoints; damaged checkpoints fall back to the newest intact one, with one `error:` line
when there is none."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
import yaml

from model.checkpoint import STATE_FILE, TRAINABLE_FILE, list_checkpoints, save_checkpoint
from model.data import read_manifest
from model.demo.trainer import kept_shard_entry
from model.stream import ShardVerifier
from model.train import train
from pipeline.io import sha256_file

SHARD = "data/en/part-00000.parquet"


def _copy_output(demo_output, out, edit=None):
    """A copy of the demo training output; ``edit(frame) -> frame`` rewrites its shard and, with
    ``sign``, the manifest records the new shard as the pipeline would."""
    import polars as pl

    shutil.copytree(demo_output, out)
    if edit is not None:
        frame = edit(pl.read_parquet(out / SHARD))
        frame.write_parquet(out / SHARD, row_group_size=256)
    return out


def _sign(out):
    import polars as pl

    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"] = [kept_shard_entry(out, SHARD, "en", pl.read_parquet(out / SHARD).height)]
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _fingerprints(output_dir):
    """Every checkpoint file's sha256, by checkpoint and file name."""
    return {c.name: {f.name: sha256_file(f) for f in sorted(c.iterdir())} for c in list_checkpoints(output_dir)}


def _record_files(checkpoint):
    """Record the checkpoint's files as they are now in its state.json: a checkpoint saved this way."""
    meta = json.loads((checkpoint / "state.json").read_text())
    for name in meta.get("files", {}):  # checkpoints record their files since they are checked on load
        meta["files"][name] = {"bytes": (checkpoint / name).stat().st_size, "sha256": sha256_file(checkpoint / name)}
    (checkpoint / "state.json").write_text(json.dumps(meta))


def _set_trainable(checkpoint, name, value):
    """Overwrite one trainable tensor of a checkpoint with ``value`` everywhere, recorded as saved."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(checkpoint / TRAINABLE_FILE))
    tensors[name] = torch.full_like(tensors[name], value)
    save_file(tensors, str(checkpoint / TRAINABLE_FILE))
    _record_files(checkpoint)


# ---------------------------------------------------------------------------------------------------
# Shards and the dataset
# ---------------------------------------------------------------------------------------------------


def test_a_shard_rewritten_after_the_pipeline_stops_training_naming_it(make_config, demo_output, tmp_path):
    import polars as pl

    out = _copy_output(demo_output, tmp_path / "data",
                       lambda f: f.with_columns(text_tgt=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("rewritten"))
                                                .otherwise(pl.col("text_tgt"))))
    cfg = make_config(data={"manifest": str(out)}, train={"max_steps": 2})
    with pytest.raises(ValueError, match=rf"{SHARD}: \d+ bytes does not match the manifest's \d+ bytes; "
                                         r"the shard changed after the pipeline wrote it: `mblip verify"):
        train(cfg)
    assert not list_checkpoints(cfg.train.output_dir)  # refused before the first step


def test_the_stream_checks_each_shard_again_when_it_changes(demo_output, tmp_path):
    out = _copy_output(demo_output, tmp_path / "data")
    verifier = ShardVerifier(read_manifest(out))
    verifier.check_all()
    path = out / SHARD
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=rf"{SHARD}: sha256 \w+… does not match the manifest's sha256 \w+…"):
        verifier.check(path)
    path.write_bytes(original)  # the same bytes again (new mtime): hashed again, accepted
    verifier.check(path)
    path.unlink()
    with pytest.raises(ValueError, match=f"{SHARD}: shard listed in .*manifest.json is missing"):
        verifier.check(path)


def test_a_manifest_without_checksums_is_refused(demo_output, tmp_path):
    out = _copy_output(demo_output, tmp_path / "data")
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        del entry["sha256"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="no sha256 for 1 kept shard"):
        ShardVerifier(read_manifest(out))


def test_resume_refuses_another_dataset_and_accepts_a_moved_copy(make_config, demo_output, tmp_path):
    import polars as pl

    cfg = make_config(train={"max_steps": 3})
    first = train(cfg, stop_after=1)
    recorded = json.loads((first.checkpoint / "state.json").read_text())["dataset"]
    assert recorded["shards"] == 1 and recorded["manifest"] == str(demo_output)
    other = _sign(_copy_output(demo_output, tmp_path / "other", lambda f: f.filter(pl.int_range(pl.len()) % 5 != 0)))
    with pytest.raises(ValueError, match=r"cannot resume .*step-0000001: the dataset was .* now .*other "
                                         r"\(1 shards, \d+ rows, id \w+…\)"):
        train(make_config(data={"manifest": str(other)}, train={"max_steps": 3}))
    moved = _copy_output(demo_output, tmp_path / "moved")  # the same shards elsewhere: the same dataset
    assert train(make_config(data={"manifest": str(moved)}, train={"max_steps": 3})).step == 3


# ---------------------------------------------------------------------------------------------------
# Non-finite values
# ---------------------------------------------------------------------------------------------------


def test_a_nonfinite_loss_stops_training_naming_step_and_batch_and_keeps_the_checkpoints(make_config, tmp_path,
                                                                                          capsys):
    import re

    from mblip.cli import main

    cfg = make_config(train={"max_steps": 6, "save_every": 1, "keep_checkpoints": 2})
    train(cfg, stop_after=2)
    # A checkpoint whose weights are finite but absurd (an exponent bit flipped): the forward overflows.
    _set_trainable(list_checkpoints(cfg.train.output_dir)[-1], "language_projection.weight", 3e38)
    before = _fingerprints(cfg.train.output_dir)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert main(["train", str(config)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.match(
        r"error: training stopped at step 3: the loss is nan on batch 2 of process 0's stream \(micro batch 1 of 1; "
        r"examples \w+, .*\(8\)\)\. The step was not applied and the newest checkpoint, .*step-0000002, is untouched",
        errors[0])
    assert _fingerprints(cfg.train.output_dir) == before  # nothing saved, nothing pruned


def _inject_inf_gradient(module, args, output):
    """A fault in the backward pass: the gradient flowing into the language projection becomes infinite."""
    is_projection = isinstance(module, torch.nn.Linear) and (module.in_features, module.out_features) == (48, 64)
    if is_projection and output.requires_grad:  # tiny BLIP-2: Q-Former width 48 to the LLM's 64
        output.register_hook(lambda grad: torch.full_like(grad, float("inf")))


@pytest.mark.parametrize("scaler", [False, True])
def test_a_nonfinite_gradient_stops_training_unless_the_fp16_scaler_skips_it(make_config, scaler):
    extra = {"vision_autocast": "fp16"} if scaler else {}
    cfg = make_config(train={"max_steps": 2, "save_every": 1, **extra})
    handle = torch.nn.modules.module.register_module_forward_hook(_inject_inf_gradient)
    try:
        if not scaler:
            with pytest.raises(ValueError, match=r"training stopped at step 1: the gradient norm is (nan|inf) "
                                                 r"\(loss \d+\.\d+\) after batches 0-0 of process 0's stream"):
                train(cfg)
            assert not list_checkpoints(cfg.train.output_dir)
            return
        result = train(cfg)  # the scaler skips each overflowing step and lowers its scale
    finally:
        handle.remove()
    state = torch.load(result.checkpoint / STATE_FILE, weights_only=True)
    assert result.step == 2 and state["scaler"]["scale"] < 2.0**16 and state["optimizer"]["state"] == {}


def test_saving_refuses_nonfinite_weights_and_pruning_keeps_the_new_checkpoint(make_config):
    cfg = make_config(train={"max_steps": 3, "save_every": 1, "keep_checkpoints": 1})
    train(cfg)
    (checkpoint,) = list_checkpoints(cfg.train.output_dir)
    assert checkpoint.name == "step-0000003"
    from model.build import build_model
    from model.checkpoint import build_from_checkpoint
    from model.train import build_optimizer, build_scheduler

    assembled = build_from_checkpoint(checkpoint, torch.device("cpu"))
    optimizer = build_optimizer(assembled.model, cfg.optim, "full")
    scheduler = build_scheduler(optimizer, 1, 3, 0.1)
    with torch.no_grad():
        next(p for p in assembled.model.parameters() if p.requires_grad)[0] = float("nan")
    before = _fingerprints(cfg.train.output_dir)
    with pytest.raises(ValueError, match="not saving the checkpoint of step 4: non-finite values .* are kept as"):
        save_checkpoint(cfg.train.output_dir, assembled.model, optimizer, scheduler, 4, cfg, torch.device("cpu"), 1)
    assert _fingerprints(cfg.train.output_dir) == before
    # A later step (left by a run that fell back to an earlier checkpoint) is not pruned in favour of the new one.
    fresh = build_model(cfg.model, cfg.lora, "full", torch.device("cpu"))
    saved = save_checkpoint(cfg.train.output_dir, fresh.model, optimizer, scheduler, 2, cfg, torch.device("cpu"), 1)
    assert [c.name for c in list_checkpoints(cfg.train.output_dir)] == ["step-0000002", "step-0000003"]
    assert saved.name == "step-0000002"


def test_export_refuses_a_nonfinite_checkpoint_with_one_error_line(make_config, tmp_path, capsys):
    from mblip.cli import main

    checkpoint = train(make_config(train={"max_steps": 1})).checkpoint
    _set_trainable(checkpoint, "language_projection.bias", float("nan"))
    assert main(["export-model", str(checkpoint), str(tmp_path / "export")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{checkpoint / TRAINABLE_FILE}: non-finite values" in errors[0]
    assert not (tmp_path / "export").exists()


# ---------------------------------------------------------------------------------------------------
# Damaged checkpoint files
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damaged", [STATE_FILE, TRAINABLE_FILE])
def test_resume_falls_back_to_the_newest_intact_checkpoint_saying_so(make_config, tmp_path, caplog, damaged):
    common = dict(optim={"warmup_steps": 1})
    straight = train(make_config(train={"max_steps": 4, "output_dir": str(tmp_path / "a")}, **common))
    cfg = make_config(train={"max_steps": 4, "output_dir": str(tmp_path / "b"), "save_every": 1}, **common)
    train(cfg, stop_after=2)
    newest = list_checkpoints(cfg.train.output_dir)[-1]
    path = newest / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated: a full disk, a killed copy
    with caplog.at_level(logging.WARNING, logger="model.checkpoint"):
        resumed = train(cfg)
    assert f"{path}: " in caplog.text and "resuming from" in caplog.text and "step-0000001" in caplog.text
    assert resumed.losses == pytest.approx(straight.losses[1:], abs=1e-6)  # from step 1, exactly


@pytest.mark.parametrize("damaged", [STATE_FILE, TRAINABLE_FILE])
def test_a_damaged_only_checkpoint_ends_in_one_error_line_naming_the_file(make_config, tmp_path, capsys, damaged):
    from mblip.cli import main

    cfg = make_config(train={"max_steps": 2})
    checkpoint = train(cfg, stop_after=1).checkpoint
    path = checkpoint / damaged
    path.write_bytes(path.read_bytes()[:100])
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert main(["train", str(config)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{path}: " in errors[0] and "no intact checkpoint" in errors[0]
    if damaged == TRAINABLE_FILE:  # the export names the file too
        assert main(["export-model", str(checkpoint), str(tmp_path / "export")]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"{path}: " in errors[0]

"""The checkpoint format, in one place: folder names, save, load, list, resume checks, and the model of a checkpoint.

A training run writes ``OUTPUT/checkpoints/step-XXXXXXX`` folders holding only what training changes:

- ``trainable.safetensors``: the trainable tensors (Q-Former, query tokens, projection, LoRA), named
  without peft's wrapper prefix, so the projection and the full stage name them alike;
- ``training_state.pt``: optimizer, scheduler and gradient-scaler state and the RNG states (tensors and
  plain values only: loaded with ``weights_only``, so loading never runs pickled code);
- ``state.json``: the step, the stage and the stream position (processes, accumulation, batches each
  process consumed, unreadable-image counters) for an exact resume;
- ``config.yaml``: the resolved training config, from which the model is rebuilt.

A folder is written under a temporary name and renamed, and only a folder with ``state.json`` counts,
so a crash mid-save never leaves a checkpoint that looks finished. ``build_from_checkpoint`` is the one
way to get a model back from a checkpoint (export, evaluation).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from model.build import AssembledModel, build_model
from model.config import TrainConfig, config_to_yaml, load_config

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "training_state.pt"
META_FILE = "state.json"
CONFIG_FILE = "config.yaml"
PEFT_PREFIX = "base_model.model."

# Knobs that fix the order of the training stream: changing one between a checkpoint and its resume
# would skip or repeat data (rows are striped over processes x workers and batched per device).
STREAM_KNOBS = (("train", "batch_size"), ("train", "global_batch"), ("train", "seed"), ("data", "num_workers"),
                ("data", "shuffle_buffer"), ("data", "tasks"), ("data", "sources"), ("data", "languages"),
                ("data", "val_fraction"), ("data", "val_rows"))


# ---------------------------------------------------------------------------------------------------
# Names and listing
# ---------------------------------------------------------------------------------------------------


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Finished checkpoints of a training output directory, oldest first."""
    root = Path(output_dir) / CHECKPOINT_DIR
    return sorted(p for p in root.glob("step-*") if (p / META_FILE).is_file()) if root.is_dir() else []


def read_meta(checkpoint: Path) -> dict:
    """A checkpoint's ``state.json``: step, stage and stream position."""
    return json.loads((Path(checkpoint) / META_FILE).read_text())


def find_checkpoint(model_dir: Path) -> Path | None:
    """``model_dir`` itself when it is a checkpoint, its newest checkpoint when it is a training output."""
    if (model_dir / TRAINABLE_FILE).is_file() and (model_dir / META_FILE).is_file():
        return model_dir
    checkpoints = list_checkpoints(model_dir)
    return checkpoints[-1] if checkpoints else None


# ---------------------------------------------------------------------------------------------------
# Trainable tensors
# ---------------------------------------------------------------------------------------------------


def canonical_name(name: str) -> str:
    """Parameter name without peft's wrapper prefix (same in projection and full stage)."""
    return name.removeprefix(PEFT_PREFIX)


def trainable_state_dict(model) -> dict[str, torch.Tensor]:
    return {canonical_name(n): p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model, path: Path, partial: bool = False) -> list[str]:
    """Copy saved trainable tensors into the model, checking missing and unexpected keys.

    ``partial``: accept a subset (projection-stage weights into a full-stage model) but never a key
    the model's trainable set lacks. Returns the loaded names.
    """
    import torch
    from safetensors.torch import load_file

    saved = load_file(str(path))
    params = {canonical_name(n): p for n, p in model.named_parameters() if p.requires_grad}
    unexpected = sorted(saved.keys() - params.keys())
    missing = [] if partial else sorted(params.keys() - saved.keys())
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match the model's trainable set: missing {missing[:5]} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)}); check model.*, lora.* and train.stage"
        )
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor.to(params[name].dtype))
    return sorted(saved)


# ---------------------------------------------------------------------------------------------------
# Save and load the training state
# ---------------------------------------------------------------------------------------------------


def rng_state(device: torch.device) -> dict:
    import torch

    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(output_dir: Path, model, optimizer, scheduler, step: int, cfg: TrainConfig, device, keep: int,
                    scaler=None, position: dict | None = None) -> Path:
    """Write ``checkpoints/step-XXXXXXX`` atomically (temporary name, then rename); prune old ones.

    ``position``: stream facts for an exact resume (processes, accumulation, batches each process
    consumed, unreadable-image counters), stored in ``state.json``.
    """
    import torch
    from safetensors.torch import save_file

    root = Path(output_dir) / CHECKPOINT_DIR
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{checkpoint_name(step)}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state_dict(model), str(tmp / TRAINABLE_FILE))
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state(device)}
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    torch.save(state, tmp / STATE_FILE)
    (tmp / META_FILE).write_text(json.dumps({"step": step, "stage": cfg.train.stage, **(position or {})}, indent=2))
    (tmp / CONFIG_FILE).write_text(config_to_yaml(cfg))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_training_state(checkpoint: Path, optimizer, scheduler, scaler=None) -> tuple[int, dict]:
    """Optimizer, scheduler (and gradient scaler) state; returns (step, RNG states). ``weights_only``:
    tensors and plain values only, so loading a checkpoint never runs pickled code."""
    import pickle

    import torch

    try:
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{checkpoint / STATE_FILE} holds more than tensors and plain values; not loading it ({err})"
        ) from err
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    return read_meta(checkpoint)["step"], state["rng"]


# ---------------------------------------------------------------------------------------------------
# Resume checks
# ---------------------------------------------------------------------------------------------------


def check_init_from(init_from: str | None) -> None:
    """A missing warm-up checkpoint fails before any model is loaded, saying how to make it."""
    if init_from and not (Path(init_from) / TRAINABLE_FILE).is_file():
        raise FileNotFoundError(
            f"train.init_from: {Path(init_from) / TRAINABLE_FILE} does not exist; run the projection stage "
            "first (e.g. `mblip train configs/train_mt0xl_warmup.yaml`) or set train.init_from to null"
        )


def check_resume(checkpoint: Path, cfg: TrainConfig, processes: int) -> dict:
    """The checkpoint's ``state.json`` after checking that this run continues the same data stream."""
    meta = read_meta(checkpoint)
    saved = yaml.safe_load((checkpoint / CONFIG_FILE).read_text()) or {}
    now = cfg.model_dump(mode="json")
    changes = []
    for section, key in STREAM_KNOBS:
        before = (saved.get(section) or {}).get(key, (now.get(section) or {}).get(key))
        if before != now[section][key]:
            changes.append(f"{section}.{key} was {before!r}, now {now[section][key]!r}")
    if meta.get("processes", processes) != processes:
        changes.append(f"processes were {meta['processes']}, now {processes}")
    if changes:
        raise ValueError(
            f"cannot resume {checkpoint}: {'; '.join(changes)}. The data position would no longer match "
            "(data skipped or repeated). Restore the saved values, or train into a new train.output_dir "
            "(or set train.resume: false)"
        )
    return meta


def resume_point(cfg: TrainConfig, processes: int) -> tuple[Path | None, dict]:
    """(newest checkpoint, its checked ``state.json``) when ``train.resume`` finds one, else (None, step 0)."""
    checkpoints = list_checkpoints(cfg.train.output_dir) if cfg.train.resume else []
    if not checkpoints:
        return None, {"step": 0}
    return checkpoints[-1], check_resume(checkpoints[-1], cfg, processes)


# ---------------------------------------------------------------------------------------------------
# The model of a checkpoint (export, evaluation)
# ---------------------------------------------------------------------------------------------------


def build_from_checkpoint(checkpoint: str | Path, device: torch.device, quantization: str = "none",
                          dtype: str | None = None) -> AssembledModel:
    """The model a checkpoint was trained as: rebuilt from its ``config.yaml`` (without gradient
    checkpointing), its trainable tensors loaded; LoRA stays unmerged.

    ``quantization``: the LLM's ("none", "8bit", "4bit"); "auto" = the config's on a GPU, none elsewhere.
    ``dtype``: storage dtype of the ViT and the LLM ("float32", "bfloat16", "float16"); None = the config's.
    """
    checkpoint = Path(checkpoint)
    cfg = load_config(checkpoint / CONFIG_FILE)
    if quantization == "auto":
        quantization = cfg.model.llm_quantization if device.type == "cuda" else "none"
    update = {"llm_quantization": quantization, "gradient_checkpointing": False}
    if dtype is not None:
        update |= {"vision_dtype": dtype, "llm_dtype": dtype}
    assembled = build_model(cfg.model.model_copy(update=update), cfg.lora, cfg.train.stage, device)
    load_trainable(assembled.model, checkpoint / TRAINABLE_FILE)
    log.info("loaded checkpoint %s on %s (LLM quantisation %s)", checkpoint, device, quantization)
    return assembled

"""The re-alignment trainer, top to bottom: setup model, setup data, loss step, train loop, checkpoints.

Recipe (mBLIP, Geigle et al. 2024, Sec. 4): Q-Former + query tokens + projection + LoRA trained,
ViT and LLM frozen; AdamW (weight decay 0.1) with lr 1e-5 for the Q-Former side and 2e-4 for LoRA;
linear warm-up then cosine decay; gradient clipping 1.0; gradient accumulation; bf16 autocast and
gradient checkpointing on GPU; data parallel over GPUs with accelerate (``accelerate launch``).

A checkpoint holds only what training changes (trainable tensors, optimizer and scheduler state, the
step, RNG states) plus the resolved config, so resuming continues exactly where the run stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from model.config import TrainConfig, config_to_yaml, load_config

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "training_state.pt"
META_FILE = "state.json"
PEFT_PREFIX = "base_model.model."


@dataclass
class TrainResult:
    step: int
    losses: list[float] = field(default_factory=list)  # mean training loss of each optimizer step run here
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    checkpoint: Path | None = None


# ---------------------------------------------------------------------------------------------------
# Setup: model, optimizer, schedule
# ---------------------------------------------------------------------------------------------------


def canonical_name(name: str) -> str:
    """Parameter name without peft's wrapper prefix (same in projection and full stage)."""
    return name.removeprefix(PEFT_PREFIX)


def build_optimizer(model, optim, stage: str):
    """AdamW with explicit groups: Q-Former side at ``lr_qformer``, LoRA at ``lr_lora`` (projection
    stage: projection only at ``lr_projection_stage``); weight decay on tensors with >= 2 dims."""
    import torch

    from model.build import component_of

    groups: dict[tuple[str, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        side = "lora" if component_of(name) == "lora" else "qformer"
        groups.setdefault((side, param.ndim >= 2), []).append(param)
    if stage == "projection":
        lrs = {"qformer": optim.lr_projection_stage}
    else:
        lrs = {"qformer": optim.lr_qformer, "lora": optim.lr_lora}
    param_groups = [
        {"params": params, "lr": lrs[side], "weight_decay": optim.weight_decay if decay else 0.0, "name": f"{side}/{'decay' if decay else 'no_decay'}"}
        for (side, decay), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, betas=optim.betas)


def build_scheduler(optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float):
    """Linear warm-up to each group's lr, then cosine decay to ``min_lr_ratio`` of it at ``total_steps``."""
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def set_train_mode(model) -> None:
    """Training mode for the trainable parts; the frozen ViT always runs in eval mode."""
    from model.build import unwrap_blip2

    model.train()
    unwrap_blip2(getattr(model, "module", model)).vision_model.eval()  # ``module``: inside DDP


# ---------------------------------------------------------------------------------------------------
# Setup: data
# ---------------------------------------------------------------------------------------------------


def setup_data(cfg: TrainConfig, assembled, rank: int, world: int, skip_batches: int):
    """Training loader (infinite, augmented, striped over processes) and a factory for validation loaders."""
    from model.data import StreamSettings, TokenSpec, make_loader, read_manifest

    if not cfg.data.manifest:
        raise ValueError("data.manifest is not set: point it at a data pipeline output directory")
    data = read_manifest(cfg.data.manifest, cfg.data.languages)
    blip2 = _blip2_config(assembled)
    tokenizer = assembled.processor.tokenizer
    spec = TokenSpec(
        image_token_index=assembled.image_token_index,
        num_query_tokens=blip2.num_query_tokens,
        max_length=cfg.data.max_length,
        decoder_only=assembled.decoder_only,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    image_size = cfg.data.image_size or blip2.vision_config.image_size
    common = dict(
        batch_size=cfg.train.batch_size, image_size=image_size, seed=cfg.train.seed, val_fraction=cfg.data.val_fraction,
        tasks=cfg.data.tasks, english_answer_prob=cfg.data.english_answer_prob, rank=rank, world=world,
    )
    train_settings = StreamSettings(
        train=True, shuffle_buffer=cfg.data.shuffle_buffer, crop_scale=cfg.data.crop_scale, hflip=cfg.data.hflip,
        skip_batches=skip_batches, **common,
    )
    train_loader = make_loader(data, assembled.processor, spec, train_settings, cfg.data.num_workers)

    def make_val_loader():
        if cfg.data.val_fraction <= 0:
            return None
        settings = StreamSettings(train=False, max_examples=cfg.data.val_max_examples, **common)
        return make_loader(data, assembled.processor, spec, settings, min(cfg.data.num_workers, 2))

    train_rows = data.rows * (1 - cfg.data.val_fraction)
    return train_loader, make_val_loader, train_rows


def _blip2_config(assembled):
    from model.build import unwrap_blip2

    return unwrap_blip2(assembled.model).config


def total_steps(cfg: TrainConfig, train_rows: float, world: int) -> int:
    if cfg.train.max_steps:
        return cfg.train.max_steps
    per_step = cfg.train.batch_size * cfg.train.grad_accum * world
    return max(1, math.ceil(cfg.train.epochs * train_rows / per_step))


# ---------------------------------------------------------------------------------------------------
# Loss step and validation
# ---------------------------------------------------------------------------------------------------


def loss_step(model, batch: dict, device: torch.device) -> torch.Tensor:
    """Mean token cross-entropy of the targets for one micro batch."""
    outputs = model(
        pixel_values=batch["pixel_values"].to(device),
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        labels=batch["labels"].to(device),
    )
    return outputs.loss


def evaluate(model, loader, device: torch.device, accelerator) -> float:
    """Mean validation loss (weighted by batch size), averaged over processes."""
    import torch

    if loader is None:
        return float("nan")
    model.eval()
    total, count = torch.zeros((), device=device), torch.zeros((), device=device)
    # A fresh loader draws its worker seed from the global RNG; keep the training RNG stream intact.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        for batch in loader:
            with accelerator.autocast():
                loss = loss_step(model, batch, device)
            n = batch["input_ids"].shape[0]
            total += loss.float() * n
            count += n
    total, count = accelerator.reduce(total, "sum"), accelerator.reduce(count, "sum")
    set_train_mode(model)
    return (total / count.clamp(min=1)).item()


# ---------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------


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


def _rng_state(device: torch.device) -> dict:
    import torch

    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(output_dir: Path, model, optimizer, scheduler, step: int, cfg: TrainConfig, device, keep: int) -> Path:
    """Write ``checkpoints/step-XXXXXXX`` atomically (temporary name, then rename); prune old ones."""
    import torch
    from safetensors.torch import save_file

    root = output_dir / CHECKPOINT_DIR
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state_dict(model), str(tmp / TRAINABLE_FILE))
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state(device)},
        tmp / STATE_FILE,
    )
    (tmp / META_FILE).write_text(json.dumps({"step": step, "stage": cfg.train.stage}, indent=2))
    (tmp / "config.yaml").write_text(config_to_yaml(cfg))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(output_dir: Path) -> list[Path]:
    root = Path(output_dir) / CHECKPOINT_DIR
    return sorted(p for p in root.glob("step-*") if (p / META_FILE).is_file()) if root.is_dir() else []


def load_training_state(checkpoint: Path, optimizer, scheduler) -> tuple[int, dict]:
    import torch

    state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    step = json.loads((checkpoint / META_FILE).read_text())["step"]
    return step, state["rng"]


# ---------------------------------------------------------------------------------------------------
# Train loop
# ---------------------------------------------------------------------------------------------------


def train(cfg: TrainConfig, stop_after: int | None = None) -> TrainResult:
    """Run (or resume) training. ``stop_after``: halt with a checkpoint after this many optimizer steps
    in this call, e.g. to fit a time slot; the schedule still follows ``train.max_steps``."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from model.build import build_model, count_parameters, format_parameter_table

    output_dir = Path(cfg.train.output_dir)
    mixed = cfg.train.mixed_precision
    if mixed == "auto":
        mixed = "bf16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(mixed_precision=mixed)
    device = accelerator.device
    set_seed(cfg.train.seed)
    is_main = accelerator.is_main_process
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(config_to_yaml(cfg))

    # -- model -----------------------------------------------------------------------------------
    assembled = build_model(cfg.model, cfg.lora, cfg.train.stage, device)
    model = assembled.model
    if is_main:
        log.info("parameters:\n%s", format_parameter_table(count_parameters(model)))
    if cfg.train.init_from:
        loaded = load_trainable(model, Path(cfg.train.init_from) / TRAINABLE_FILE, partial=True)
        log.info("initialised %d tensors from %s", len(loaded), cfg.train.init_from)
    optimizer = build_optimizer(model, cfg.optim, cfg.train.stage)

    # -- data ------------------------------------------------------------------------------------
    checkpoints = list_checkpoints(output_dir) if cfg.train.resume else []
    resume_from = checkpoints[-1] if checkpoints else None
    start_step = json.loads((resume_from / META_FILE).read_text())["step"] if resume_from else 0
    world, rank = accelerator.num_processes, accelerator.process_index
    train_loader, make_val_loader, train_rows = setup_data(
        cfg, assembled, rank, world, skip_batches=start_step * cfg.train.grad_accum
    )
    steps = total_steps(cfg, train_rows, world)
    scheduler = build_scheduler(optimizer, cfg.optim.warmup_steps, steps, cfg.optim.min_lr_ratio)
    if resume_from:
        load_trainable(model, resume_from / TRAINABLE_FILE)
        start_step, rng = load_training_state(resume_from, optimizer, scheduler)
        log.info("resuming from %s (step %d)", resume_from, start_step)
    model, optimizer = accelerator.prepare(model, optimizer)
    # The loader iterator draws its worker seed from the global RNG: create it before restoring RNG.
    batches = iter(train_loader)
    if resume_from:
        _set_rng_state(rng, device)

    from model.evaluate.validation import make_validator

    validator = make_validator(cfg, assembled, device) if is_main else None  # benchmark slices, main only

    # -- loop ------------------------------------------------------------------------------------
    result = TrainResult(step=start_step)
    set_train_mode(model)
    params = [p for p in model.parameters() if p.requires_grad]
    accum = cfg.train.grad_accum
    last = steps if stop_after is None else min(steps, start_step + stop_after)
    bar = tqdm(total=steps, initial=start_step, disable=not is_main, desc=f"train[{cfg.train.stage}]")
    tick, samples = time.perf_counter(), 0
    for step in range(start_step, last):
        step_loss = torch.zeros((), device=device)
        for micro in range(accum):
            batch = next(batches)
            samples += batch["input_ids"].shape[0] * world
            sync = contextlib.nullcontext() if micro == accum - 1 else accelerator.no_sync(model)
            with sync, accelerator.autocast():
                loss = loss_step(model, batch, device)
                accelerator.backward(loss / accum)
            step_loss += loss.detach().float() / accum
        if cfg.optim.grad_clip > 0:
            accelerator.clip_grad_norm_(params, cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        done = step + 1
        mean_loss = accelerator.reduce(step_loss, "mean").item()
        result.losses.append(mean_loss)
        result.step = done
        bar.update(1)
        if done % cfg.train.log_every == 0 or done == last:
            elapsed = time.perf_counter() - tick
            lrs = {g["name"].split("/")[0]: g["lr"] for g in optimizer.param_groups}
            bar.set_postfix(loss=f"{mean_loss:.4f}", **{f"lr_{k}": f"{v:.2e}" for k, v in lrs.items()}, samples_s=f"{samples / elapsed:.1f}")
            _append_metrics(output_dir, is_main, {"step": done, "loss": mean_loss, **{f"lr_{k}": v for k, v in lrs.items()}, "samples_per_s": samples / elapsed})
            tick, samples = time.perf_counter(), 0
        if cfg.train.eval_every and (done % cfg.train.eval_every == 0 or done == steps):
            val = evaluate(model, make_val_loader(), device, accelerator)
            result.val_losses.append((done, val))
            if is_main:
                bar.write(f"step {done}: validation loss {val:.4f}")
            _append_metrics(output_dir, is_main, {"step": done, "val_loss": val})
        if validator is not None and validator.due(done, last):
            unwrapped = accelerator.unwrap_model(model)
            validator.run(unwrapped, done, lambda: save_checkpoint(
                output_dir, unwrapped, optimizer, scheduler, done, cfg, device, cfg.train.keep_checkpoints))
            set_train_mode(model)
        if (cfg.train.save_every and done % cfg.train.save_every == 0) or done == last:
            accelerator.wait_for_everyone()
            if is_main:
                result.checkpoint = save_checkpoint(
                    output_dir, accelerator.unwrap_model(model), optimizer, scheduler, done, cfg, device, cfg.train.keep_checkpoints
                )
    bar.close()
    accelerator.wait_for_everyone()
    return result


def _append_metrics(output_dir: Path, main: bool, record: dict) -> None:
    if main:
        with (output_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point for ``accelerate launch -m model.train CONFIG`` (one process per GPU)."""
    import argparse

    parser = argparse.ArgumentParser(description="Train the mBLIP re-alignment (Q-Former + projection + LoRA).")
    parser.add_argument("config", help="training YAML (see configs/train_*.yaml)")
    parser.add_argument("--manifest", help="override data.manifest (a data pipeline output directory)")
    parser.add_argument("--output-dir", help="override train.output_dir")
    parser.add_argument("--max-steps", type=int, help="override train.max_steps")
    parser.add_argument("--stop-after", type=int, help="halt with a checkpoint after this many steps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, overrides=cli_overrides(args.manifest, args.output_dir, args.max_steps))
    result = train(cfg, stop_after=args.stop_after)
    log.info("finished at step %d; checkpoint %s", result.step, result.checkpoint)


def cli_overrides(manifest: str | None, output_dir: str | None, max_steps: int | None) -> dict:
    overrides: dict = {}
    if manifest:
        overrides.setdefault("data", {})["manifest"] = manifest
    if output_dir:
        overrides.setdefault("train", {})["output_dir"] = output_dir
    if max_steps:
        overrides.setdefault("train", {})["max_steps"] = max_steps
    return overrides


if __name__ == "__main__":
    main()

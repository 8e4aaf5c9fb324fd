"""The re-alignment trainer, top to bottom: setup model, setup data, loss step, train loop, checkpoints.

Recipe (mBLIP, Geigle et al. 2024, Sec. 4): Q-Former + query tokens + projection + LoRA trained,
ViT and LLM frozen; AdamW (weight decay 0.1) with lr 1e-5 for the Q-Former side and 2e-4 for LoRA;
linear warm-up then cosine decay; gradient clipping 1.0; effective batch 128 over all processes
(accumulation derived from the process count); on GPU the vision side under fp16 autocast (with a
gradient scaler) over a float32 ViT, the LLM under bf16 autocast, gradient checkpointing; data
parallel over GPUs with accelerate (``accelerate launch``).

A checkpoint (``model/checkpoint.py``) holds only what training changes plus the resolved config, so
resuming continues exactly where the run stopped; a change that would move the data stream is refused.

Longer than most modules on purpose: the whole trainer in one file that reads top to bottom.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from model.checkpoint import (
    TRAINABLE_FILE, check_init_from, check_resume, list_checkpoints, load_trainable, load_training_state,
    save_checkpoint, set_rng_state,
)
from model.config import (
    TrainConfig, accumulation_steps, cli_overrides, config_to_yaml, describe_batch, load_config, resolve_autocast,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

@dataclass
class TrainResult:
    step: int
    losses: list[float] = field(default_factory=list)  # mean training loss of each optimizer step run here
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    # Totals over processes: unreadable_images, skipped_batches (all images unreadable), val_unreadable_images.
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Setup: model, optimizer, schedule
# ---------------------------------------------------------------------------------------------------


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
        {"params": params, "lr": lrs[side], "weight_decay": optim.weight_decay if decay else 0.0,
         "name": f"{side}/{'decay' if decay else 'no_decay'}"}
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


AUTOCAST_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def enable_autocast(model, device_type: str, vision: str, llm: str) -> None:
    """Run the vision side (ViT + Q-Former) and the projection + LLM each under its own autocast
    (mBLIP: fp16 and bf16). The wrappers sit on the modules' forwards, so a training step calls
    ``backward()`` outside any autocast region, as torch recommends."""
    import torch

    from model.build import unwrap_blip2

    blip2 = unwrap_blip2(model)
    for mode, modules in ((vision, (blip2.vision_model, blip2.qformer)),
                          (llm, (blip2.language_projection, blip2.language_model))):
        if mode == "no":
            continue
        for module in modules:
            module.forward = _autocast_forward(module.forward, device_type, getattr(torch, AUTOCAST_DTYPES[mode]))


def _autocast_forward(forward, device_type: str, dtype):
    import torch

    @functools.wraps(forward)
    def wrapped(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return forward(*args, **kwargs)

    return wrapped


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
    from model.data import count_training_rows, read_manifest
    from model.loader import StreamSettings, TokenSpec, make_loader

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
        max_target_length=cfg.data.max_target_length,
    )
    image_size = cfg.data.image_size or blip2.vision_config.image_size
    common = dict(
        batch_size=cfg.train.batch_size, image_size=image_size, seed=cfg.train.seed, val_fraction=cfg.data.val_fraction,
        tasks=cfg.data.tasks, sources=cfg.data.sources, english_answer_prob=cfg.data.english_answer_prob,
        rank=rank, world=world,
    )
    train_settings = StreamSettings(
        train=True, shuffle_buffer=cfg.data.shuffle_buffer, crop_scale=cfg.data.crop_scale, hflip=cfg.data.hflip,
        skip_batches=skip_batches, interleave=cfg.data.interleave, **common,
    )
    train_loader = make_loader(data, assembled.processor, spec, train_settings, cfg.data.num_workers)

    def make_val_loader():
        if cfg.data.val_fraction <= 0:
            return None
        settings = StreamSettings(train=False, max_examples=cfg.data.val_max_examples, **common)
        return make_loader(data, assembled.processor, spec, settings, min(cfg.data.num_workers, 2))

    train_rows = count_training_rows(data, cfg.data.tasks, cfg.data.sources, cfg.data.val_fraction)
    if train_rows == 0:
        raise ValueError(
            f"{cfg.data.manifest}: no training rows for data.tasks={list(cfg.data.tasks) or 'all'}, "
            f"data.sources={list(cfg.data.sources) or 'all'}, data.languages={list(cfg.data.languages) or 'all'}"
        )
    return train_loader, make_val_loader, train_rows


def _blip2_config(assembled):
    from model.build import unwrap_blip2

    return unwrap_blip2(assembled.model).config


def total_steps(cfg: TrainConfig, train_rows: float) -> int:
    """Optimizer steps of the schedule: ``max_steps``, or epochs over the selected training rows."""
    if cfg.train.max_steps:
        return cfg.train.max_steps
    return max(1, math.ceil(cfg.train.epochs * train_rows / cfg.train.global_batch))


# ---------------------------------------------------------------------------------------------------
# Loss step and validation
# ---------------------------------------------------------------------------------------------------


def loss_step(model, batch: dict, device: torch.device, meter=None) -> torch.Tensor:
    """Mean token cross-entropy of the targets for one micro batch (``meter``: also per task)."""
    labels = batch["labels"].to(device)
    outputs = model(
        pixel_values=batch["pixel_values"].to(device),
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        labels=labels,
    )
    if meter is not None and batch.get("tasks"):
        meter.add(outputs.logits, labels, batch["tasks"])
    return outputs.loss


def evaluate(model, loader, device: torch.device, accelerator, counts: dict | None = None) -> float:
    """Mean validation loss (weighted by batch size), averaged over processes; unreadable images are
    added to ``counts["val_unreadable_images"]`` (summed over processes)."""
    import torch

    if loader is None:
        return float("nan")
    model.eval()
    total, count = torch.zeros((), device=device), torch.zeros((), device=device)
    unreadable = torch.zeros((), device=device)
    # A fresh loader draws its worker seed from the global RNG; keep the training RNG stream intact.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        for batch in loader:
            unreadable += batch["unreadable_images"]
            if not batch["example_ids"]:
                continue
            loss = loss_step(model, batch, device)
            n = batch["input_ids"].shape[0]
            total += loss.float() * n
            count += n
    total, count = accelerator.reduce(total, "sum"), accelerator.reduce(count, "sum")
    if counts is not None:
        unreadable = int(accelerator.reduce(unreadable, "sum").item())
        counts["val_unreadable_images"] = counts.get("val_unreadable_images", 0) + unreadable
    set_train_mode(model)
    return (total / count.clamp(min=1)).item()


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

    from model.build import build_model, count_parameters, format_parameter_table, require_source

    require_source(cfg.model.blip2, "model.blip2")
    require_source(cfg.model.llm, "model.llm")
    check_init_from(cfg.train.init_from)
    output_dir = Path(cfg.train.output_dir)
    accelerator = Accelerator(mixed_precision="no")  # autocast per model part, see enable_autocast
    device = accelerator.device
    world, rank = accelerator.num_processes, accelerator.process_index
    accum = accumulation_steps(cfg.train, world)
    set_seed(cfg.train.seed)
    is_main = accelerator.is_main_process
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(config_to_yaml(cfg))
        log.info("%s", describe_batch(cfg.train, world))

    # Every task of the data must be one the trainer can build: checked before the model is loaded.
    if cfg.data.manifest:
        from model.data import check_tasks, read_manifest

        task_rows = check_tasks(read_manifest(cfg.data.manifest, cfg.data.languages), cfg.data.tasks)
        if is_main:
            log.info("training rows per task: %s", task_rows)

    # -- model -----------------------------------------------------------------------------------
    assembled = build_model(cfg.model, cfg.lora, cfg.train.stage, device)
    model = assembled.model
    vision_autocast, llm_autocast = resolve_autocast(cfg, device.type)
    enable_autocast(model, device.type, vision_autocast, llm_autocast)
    # fp16 activations need loss scaling so that small gradients do not underflow (bf16 does not).
    scaler = torch.amp.GradScaler(device.type, enabled="fp16" in (vision_autocast, llm_autocast))
    if is_main:
        log.info("parameters:\n%s", format_parameter_table(count_parameters(model)))
        log.info("autocast: vision side %s, projection + LLM %s", vision_autocast, llm_autocast)
    if cfg.train.init_from:
        loaded = load_trainable(model, Path(cfg.train.init_from) / TRAINABLE_FILE, partial=True)
        log.info("initialised %d tensors from %s", len(loaded), cfg.train.init_from)
    optimizer = build_optimizer(model, cfg.optim, cfg.train.stage)

    # -- data ------------------------------------------------------------------------------------
    checkpoints = list_checkpoints(output_dir) if cfg.train.resume else []
    resume_from = checkpoints[-1] if checkpoints else None
    meta = check_resume(resume_from, cfg, world) if resume_from else {"step": 0}
    start_step = meta["step"]
    # Batches this process consumed (an all-unreadable batch is consumed without counting as a step).
    consumed = meta.get("batches_consumed", [start_step * accum] * world)[rank]
    train_loader, make_val_loader, train_rows = setup_data(cfg, assembled, rank, world, skip_batches=consumed)
    steps = total_steps(cfg, train_rows)
    scheduler = build_scheduler(optimizer, cfg.optim.warmup_steps, steps, cfg.optim.min_lr_ratio)
    if resume_from:
        load_trainable(model, resume_from / TRAINABLE_FILE)
        start_step, rng = load_training_state(resume_from, optimizer, scheduler, scaler)
        log.info("resuming from %s (step %d)", resume_from, start_step)
    model, optimizer = accelerator.prepare(model, optimizer)
    # The loader iterator draws its worker seed from the global RNG: create it before restoring RNG.
    batches = iter(train_loader)
    if resume_from:
        set_rng_state(rng, device)

    from model.evaluate.validation import make_validator, validation_interval

    val_every = validation_interval(cfg, device)  # benchmark-slice validation (main process generates)
    validator = make_validator(cfg, assembled, device) if is_main and val_every else None

    # -- loop ------------------------------------------------------------------------------------
    result = TrainResult(step=start_step)
    set_train_mode(model)
    params = [p for p in model.parameters() if p.requires_grad]
    # Unreadable images and skipped batches of this process since the checkpoint; totals over processes in `counts`.
    local = torch.zeros(2, device=device)
    counts = {k: meta.get(k, 0) for k in ("unreadable_images", "skipped_batches", "val_unreadable_images")}
    last = steps if stop_after is None else min(steps, start_step + stop_after)
    bar = tqdm(total=steps, initial=start_step, disable=not is_main, desc=f"train[{cfg.train.stage}]")
    tick, samples = time.perf_counter(), 0
    from model.data import known_tasks
    from model.task_loss import TaskLossMeter

    meter = TaskLossMeter(sorted(known_tasks()), assembled.decoder_only, device)
    for step in range(start_step, last):
        step_loss = torch.zeros((), device=device)
        for micro in range(accum):
            batch = next(batches)
            consumed += 1
            local[0] += batch["unreadable_images"]
            while not batch["example_ids"]:  # every image of the batch failed: skip it, count it
                local[1] += 1
                batch = next(batches)
                consumed += 1
                local[0] += batch["unreadable_images"]
            samples += batch["input_ids"].shape[0] * world
            sync = contextlib.nullcontext() if micro == accum - 1 else accelerator.no_sync(model)
            with sync:
                loss = loss_step(model, batch, device, meter)  # autocast inside the model's parts
                accelerator.backward(scaler.scale(loss / accum))  # outside autocast
            step_loss += loss.detach().float() / accum
        scaler.unscale_(optimizer)
        if cfg.optim.grad_clip > 0:
            accelerator.clip_grad_norm_(params, cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        done = step + 1
        mean_loss = accelerator.reduce(step_loss, "mean").item()
        result.losses.append(mean_loss)
        result.step = done
        bar.update(1)
        if done % cfg.train.log_every == 0 or done == last:
            totals = accelerator.reduce(local.clone(), "sum").tolist()
            counts["unreadable_images"] += int(totals[0])
            counts["skipped_batches"] += int(totals[1])
            local.zero_()
            elapsed = time.perf_counter() - tick
            lrs = {g["name"].split("/")[0]: g["lr"] for g in optimizer.param_groups}
            bar.set_postfix(loss=f"{mean_loss:.4f}", **{f"lr_{k}": f"{v:.2e}" for k, v in lrs.items()},
                            samples_s=f"{samples / elapsed:.1f}")
            per_task = meter.take(lambda t: accelerator.reduce(t, "sum"))
            record = {"step": done, "loss": mean_loss, **{f"loss_{t}": v for t, v in per_task.items()},
                      **{f"lr_{k}": v for k, v in lrs.items()}, "samples_per_s": samples / elapsed, **counts}
            _append_metrics(output_dir, is_main, record)
            tick, samples = time.perf_counter(), 0
        if cfg.train.eval_every and (done % cfg.train.eval_every == 0 or done == steps):
            val = evaluate(model, make_val_loader(), device, accelerator, counts)
            result.val_losses.append((done, val))
            if is_main:
                bar.write(f"step {done}: validation loss {val:.4f}")
            _append_metrics(output_dir, is_main,
                            {"step": done, "val_loss": val, "val_unreadable_images": counts["val_unreadable_images"]})
        if val_every and (done % val_every == 0 or done == last):  # benchmark slices; the same on every process
            position = {"processes": world, "accumulation": accum, **counts,
                        "batches_consumed": accelerator.gather(torch.tensor([consumed], device=device)).tolist()}
            totals = accelerator.reduce(local.clone(), "sum").tolist()
            position["unreadable_images"] += int(totals[0])
            position["skipped_batches"] += int(totals[1])
            if validator is not None:
                unwrapped = accelerator.unwrap_model(model)
                validator.run(unwrapped, done, lambda: save_checkpoint(
                    output_dir, unwrapped, optimizer, scheduler, done, cfg, device, cfg.train.keep_checkpoints,
                    scaler, position))
                set_train_mode(model)
            accelerator.wait_for_everyone()
        if (cfg.train.save_every and done % cfg.train.save_every == 0) or done == last:
            positions = accelerator.gather(torch.tensor([consumed], device=device)).tolist()
            totals = accelerator.reduce(local.clone(), "sum").tolist()
            position = {"processes": world, "accumulation": accum, "batches_consumed": positions, **counts}
            position["unreadable_images"] += int(totals[0])  # not yet logged
            position["skipped_batches"] += int(totals[1])
            accelerator.wait_for_everyone()
            if is_main:
                result.checkpoint = save_checkpoint(
                    output_dir, accelerator.unwrap_model(model), optimizer, scheduler, done, cfg, device,
                    cfg.train.keep_checkpoints, scaler, position,
                )
    bar.close()
    result.counts = counts
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


if __name__ == "__main__":
    main()

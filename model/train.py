"""The re-alignment trainer as a recipe: setup model, setup data, loss step, train loop, save.

Recipe (mBLIP, Geigle et al. 2024, Sec. 4): Q-Former + query tokens + projection + LoRA trained,
ViT and LLM frozen; AdamW (weight decay 0.1) with lr 1e-5 for the Q-Former side and 2e-4 for LoRA;
linear warm-up then cosine decay; gradient clipping 1.0; effective batch 128 over all processes
(accumulation derived from the process count); on GPU the vision side under fp16 autocast (with a
gradient scaler) over a float32 ViT, the LLM under bf16 autocast, gradient checkpointing; data
parallel over GPUs with accelerate (``accelerate launch`` of ``model/launcher/train_worker.py``).

``train`` reads as the table of contents: each setup step takes its section of the config
(``model``, ``lora``, ``data``, ``optim``, ``train``), then ``train_loop`` runs the optimizer steps.
The checkpoint format (what is saved, how a resume is checked) lives in ``model/checkpoint.py``;
``StreamPosition`` is the one place that tracks where each process is in the data stream, so a
resumed run continues exactly where the run stopped.

What training refuses (docs/training.md): shards that differ from the manifest (``check_data``, then
the stream), a resume on another dataset or stream setting (``model/checkpoint.py``), and a non-finite
loss or gradient, which stops the run before the step is applied (``check_finite_step``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from model.build import (
    AssembledModel,
    build_model,
    component_of,
    count_parameters,
    format_parameter_table,
    require_source,
    unwrap_blip2,
)
from model.checkpoint import (
    CONFIG_FILE,
    TRAINABLE_FILE,
    apply_training_state,
    check_init_from,
    copy_trainable,
    list_checkpoints,
    load_trainable,
    resume_point,
    save_checkpoint,
    set_rng_state,
)
from model.config import (
    DataConfig,
    LoraSettings,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    TrainSettings,
    accumulation_steps,
    autocast_modes,
    cli_overrides,
    config_to_yaml,
    describe_batch,
    load_config,
)
from model.data import (
    TrainingData,
    check_tasks,
    count_training_rows,
    known_tasks,
    read_manifest,
    select_validation_rows,
)
from model.evaluate.validation import BenchmarkValidator, make_validator, validation_interval
from model.loader import StreamSettings, TokenSpec, make_loader
from model.stream import ShardVerifier, dataset_identity
from model.task_loss import TaskLossMeter
from model.trackers import check_installed, log_metrics, run_name, start_trackers, tracker_project

log = logging.getLogger(__name__)

COUNTERS = ("unreadable_images", "skipped_batches", "val_unreadable_images")


@dataclass
class TrainResult:
    step: int
    losses: list[float] = field(default_factory=list)  # mean training loss of each optimizer step run here
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    # Totals over processes: unreadable_images, skipped_batches (all images unreadable), val_unreadable_images.
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# The recipe
# ---------------------------------------------------------------------------------------------------


def train(cfg: TrainConfig, stop_after: int | None = None) -> TrainResult:
    """Run (or resume) training. ``stop_after``: halt with a checkpoint after this many optimizer steps
    in this call, e.g. to fit a time slot; the schedule still follows ``train.max_steps``."""
    require_source(cfg.model.blip2, "model.blip2")
    require_source(cfg.model.llm, "model.llm")
    check_init_from(cfg.train.init_from)
    run = setup_run(cfg)
    # Before the model is loaded: the shards (verified), the dataset's identity, the checkpoint to resume.
    shards, verifier = check_data(cfg.data, run.is_main)
    dataset = dataset_identity(shards)
    resume = resume_point(cfg, run.world, dataset)  # the newest intact checkpoint, checked against this run
    meta = resume.meta if resume else {"step": 0}
    assembled, scaler = setup_model(cfg.model, cfg.lora, cfg.train, run.device, run.is_main)
    optimizer = build_optimizer(assembled.model, cfg.optim, cfg.train.stage)

    position = StreamPosition.resume(meta, run)
    data = setup_data(shards, verifier, cfg.data, cfg.train, assembled, run.rank, run.world,
                      skip_batches=position.consumed)
    steps = total_steps(cfg.train, data.rows)
    scheduler = build_scheduler(optimizer, cfg.optim.warmup_steps, steps, cfg.optim.min_lr_ratio)
    start_step, rng = meta["step"], None
    if resume:
        copy_trainable(assembled.model, resume.trainable, resume.checkpoint / TRAINABLE_FILE)
        start_step, rng = apply_training_state(resume.state, meta, optimizer, scheduler, scaler)
        log.info("resuming from %s (step %d)", resume.checkpoint, start_step)
        del resume  # its tensors are now the model's and the optimizer's
    model, optimizer = run.accelerator.prepare(assembled.model, optimizer)
    # The loader iterator draws its worker seed from the global RNG: create it before restoring RNG.
    batches = iter(data.loader)
    if rng is not None:
        set_rng_state(rng, run.device)

    val_every = validation_interval(cfg, run.device)  # benchmark-slice validation (main process generates)
    training = Training(
        model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, batches=batches, position=position,
        meter=TaskLossMeter(sorted(known_tasks()), assembled.decoder_only, run.device),
        make_val_loader=data.make_val_loader, val_every=val_every,
        validator=make_validator(cfg, assembled, run.device) if run.is_main and val_every else None,
        dataset=dataset,
    )
    last = steps if stop_after is None else min(steps, start_step + stop_after)
    return train_loop(cfg, run, training, start_step, steps, last)


# ---------------------------------------------------------------------------------------------------
# Setup: processes, model, optimizer, schedule
# ---------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """This process's place in the run (accelerate) and where the run writes."""

    accelerator: Any
    device: torch.device
    world: int  # processes
    rank: int
    accum: int  # micro batches per optimizer step
    output_dir: Path

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process


def setup_run(cfg: TrainConfig) -> Run:
    """Processes and seed; the main process creates the output directory and writes the resolved config."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    check_installed(cfg.train.log_with)
    # autocast per model part, see enable_autocast; trackers: model/trackers.py
    accelerator = Accelerator(mixed_precision="no", log_with=list(cfg.train.log_with) or None,
                              project_config=tracker_project(cfg.train.output_dir))
    world = accelerator.num_processes
    run = Run(accelerator, accelerator.device, world, accelerator.process_index,
              accumulation_steps(cfg.train, world), Path(cfg.train.output_dir))
    set_seed(cfg.train.seed)
    if run.is_main:
        run.output_dir.mkdir(parents=True, exist_ok=True)
        (run.output_dir / CONFIG_FILE).write_text(config_to_yaml(cfg))
        log.info("%s", describe_batch(cfg.train, world))
    start_trackers(accelerator, cfg.train.log_with, run.output_dir, run_name(cfg.train.output_dir, cfg.train.run_name),
                   cfg.model_dump(mode="json"))
    return run


def setup_model(model_cfg: ModelConfig, lora: LoraSettings, train_cfg: TrainSettings, device: torch.device,
                is_main: bool) -> tuple[AssembledModel, torch.amp.GradScaler]:
    """The model with its trainable set and per-part autocast, its gradient scaler, and the warm-up
    weights of ``train.init_from`` when set."""
    assembled = build_model(model_cfg, lora, train_cfg.stage, device)
    vision_autocast, llm_autocast = autocast_modes(model_cfg, train_cfg, device.type)
    enable_autocast(assembled.model, device.type, vision_autocast, llm_autocast)
    # fp16 activations need loss scaling so that small gradients do not underflow (bf16 does not).
    scaler = torch.amp.GradScaler(device.type, enabled="fp16" in (vision_autocast, llm_autocast))
    if is_main:
        log.info("parameters:\n%s", format_parameter_table(count_parameters(assembled.model)))
        log.info("autocast: vision side %s, projection + LLM %s", vision_autocast, llm_autocast)
    if train_cfg.init_from:
        loaded = load_trainable(assembled.model, Path(train_cfg.init_from) / TRAINABLE_FILE, partial=True)
        log.info("initialised %d tensors from %s", len(loaded), train_cfg.init_from)
    return assembled, scaler


def build_optimizer(model, optim: OptimConfig, stage: str):
    """AdamW with explicit groups: Q-Former side at ``lr_qformer``, LoRA at ``lr_lora`` (projection
    stage: projection only at ``lr_projection_stage``); weight decay on tensors with >= 2 dims."""
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

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def enable_autocast(model, device_type: str, vision: str, llm: str) -> None:
    """Run the vision side (ViT + Q-Former) and the projection + LLM each under its own autocast
    (mBLIP: fp16 and bf16). The wrappers sit on the modules' forwards, so a training step calls
    ``backward()`` outside any autocast region, as torch recommends."""
    blip2 = unwrap_blip2(model)
    for mode, modules in ((vision, (blip2.vision_model, blip2.qformer)),
                          (llm, (blip2.language_projection, blip2.language_model))):
        if mode == "no":
            continue
        for module in modules:
            module.forward = _autocast_forward(module.forward, device_type, AUTOCAST_DTYPES[mode])


def _autocast_forward(forward, device_type: str, dtype: torch.dtype):
    @functools.wraps(forward)
    def wrapped(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return forward(*args, **kwargs)

    return wrapped


def set_train_mode(model) -> None:
    """Training mode for the trainable parts; the frozen ViT always runs in eval mode."""
    model.train()
    unwrap_blip2(getattr(model, "module", model)).vision_model.eval()  # ``module``: inside DDP


# ---------------------------------------------------------------------------------------------------
# Setup: data
# ---------------------------------------------------------------------------------------------------


def check_data(data: DataConfig, is_main: bool) -> tuple[TrainingData, ShardVerifier]:
    """The kept shards of ``data.manifest``, each checked against the manifest's bytes and sha256, holding only
    tasks the trainer can build (checked before the model is loaded); the verifier goes on to the stream."""
    if not data.manifest:
        raise ValueError("data.manifest is not set: point it at a data pipeline output directory")
    shards = read_manifest(data.manifest, data.languages)
    verifier = ShardVerifier(shards)
    started = time.perf_counter()
    verifier.check_all()
    if is_main:
        log.info("%d kept shards checked against the manifest's sha256 in %.1f s", len(shards.files),
                 time.perf_counter() - started)
    task_rows = check_tasks(shards, data.tasks)
    if is_main:
        log.info("training rows per task: %s", task_rows)
    return shards, verifier


@dataclass
class TrainData:
    loader: Any  # DataLoader: the infinite, augmented training stream of this process
    make_val_loader: Callable[[], Any]  # a fresh validation DataLoader, or None without a hold-out
    rows: int  # training rows of one epoch (selected tasks and sources, hold-out excluded)


def setup_data(data: TrainingData, verifier: ShardVerifier, data_cfg: DataConfig, train_cfg: TrainSettings,
               assembled: AssembledModel, rank: int, world: int, skip_batches: int) -> TrainData:
    """Training loader (infinite, augmented, striped over processes) and a factory for validation loaders;
    both check each shard against the manifest (``verifier``) before reading it."""
    blip2 = unwrap_blip2(assembled.model).config
    tokenizer = assembled.processor.tokenizer
    spec = TokenSpec(
        image_token_index=assembled.image_token_index,
        num_query_tokens=blip2.num_query_tokens,
        max_length=data_cfg.max_length,
        decoder_only=assembled.decoder_only,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        max_target_length=data_cfg.max_target_length,
    )
    image_size = data_cfg.image_size or blip2.vision_config.image_size
    val_ids = select_validation_rows(data, data_cfg.val_rows, data_cfg.tasks, data_cfg.sources)
    common = dict(
        batch_size=train_cfg.batch_size, image_size=image_size, seed=train_cfg.seed,
        val_fraction=data_cfg.val_fraction, val_ids=val_ids, tasks=data_cfg.tasks, sources=data_cfg.sources,
        english_answer_prob=data_cfg.english_answer_prob, target_separator=data_cfg.target_separator,
        rank=rank, world=world,
    )
    train_settings = StreamSettings(
        train=True, shuffle_buffer=data_cfg.shuffle_buffer, crop_scale=data_cfg.crop_scale, hflip=data_cfg.hflip,
        skip_batches=skip_batches, interleave=data_cfg.interleave, **common,
    )
    train_loader = make_loader(data, assembled.processor, spec, train_settings, data_cfg.num_workers, verifier)

    def make_val_loader():
        if data_cfg.val_fraction <= 0 and not val_ids:
            return None
        settings = StreamSettings(train=False, max_examples=data_cfg.val_max_examples, **common)
        return make_loader(data, assembled.processor, spec, settings, min(data_cfg.num_workers, 2), verifier)

    train_rows = count_training_rows(data, data_cfg.tasks, data_cfg.sources, data_cfg.val_fraction, val_ids)
    if train_rows == 0:
        raise ValueError(
            f"{data_cfg.manifest}: no training rows for data.tasks={list(data_cfg.tasks) or 'all'}, "
            f"data.sources={list(data_cfg.sources) or 'all'}, data.languages={list(data_cfg.languages) or 'all'}"
        )
    return TrainData(train_loader, make_val_loader, train_rows)


def total_steps(train_cfg: TrainSettings, train_rows: float) -> int:
    """Optimizer steps of the schedule: ``max_steps``, or epochs over the selected training rows."""
    if train_cfg.max_steps:
        return train_cfg.max_steps
    return max(1, math.ceil(train_cfg.epochs * train_rows / train_cfg.global_batch))


@dataclass
class StreamPosition:
    """Where this process is in the training stream, and the images it could not read.

    ``consumed`` is what a resumed loader skips (``StreamSettings.skip_batches``); ``snapshot`` is what
    a checkpoint's ``state.json`` stores and ``resume`` reads back.
    """

    consumed: int  # batches this process took from its loader, all-unreadable ones included
    pending: torch.Tensor  # [unreadable images, skipped batches] of this process not yet added to ``counts``
    counts: dict[str, int]  # totals over processes: unreadable_images, skipped_batches, val_unreadable_images

    @classmethod
    def resume(cls, meta: dict, run: Run) -> StreamPosition:
        """From a checkpoint's ``state.json`` (``{"step": 0}`` for a fresh run)."""
        consumed = meta.get("batches_consumed", [meta["step"] * run.accum] * run.world)[run.rank]
        return cls(consumed, torch.zeros(2, device=run.device), {k: meta.get(k, 0) for k in COUNTERS})

    def next_batch(self, batches: Iterator[dict]) -> dict:
        """The next batch holding a readable image; a batch whose images all failed is consumed and counted."""
        batch = self._take(batches)
        while not batch["example_ids"]:
            self.pending[1] += 1
            batch = self._take(batches)
        return batch

    def _take(self, batches: Iterator[dict]) -> dict:
        batch = next(batches)
        self.consumed += 1
        self.pending[0] += batch["unreadable_images"]
        return batch

    def _pending_totals(self, accelerator) -> tuple[int, int]:
        unreadable, skipped = accelerator.reduce(self.pending.clone(), "sum").tolist()
        return int(unreadable), int(skipped)

    def flush(self, accelerator) -> None:
        """Add the pending counters of every process to ``counts`` (every process calls it)."""
        unreadable, skipped = self._pending_totals(accelerator)
        self.counts["unreadable_images"] += unreadable
        self.counts["skipped_batches"] += skipped
        self.pending.zero_()

    def snapshot(self, run: Run) -> dict:
        """The stream facts a checkpoint stores for an exact resume (every process calls it)."""
        consumed = run.accelerator.gather(torch.tensor([self.consumed], device=run.device)).tolist()
        unreadable, skipped = self._pending_totals(run.accelerator)
        return {"processes": run.world, "accumulation": run.accum, "batches_consumed": consumed, **self.counts,
                "unreadable_images": self.counts["unreadable_images"] + unreadable,
                "skipped_batches": self.counts["skipped_batches"] + skipped}


# ---------------------------------------------------------------------------------------------------
# Loss step and validation loss
# ---------------------------------------------------------------------------------------------------


def loss_step(model, batch: dict, device: torch.device, meter: TaskLossMeter | None = None) -> torch.Tensor:
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
# Train loop and save
# ---------------------------------------------------------------------------------------------------


@dataclass
class Training:
    """What the loop advances, as the setup steps built it."""

    model: Any  # prepared by accelerate (inside DDP on several GPUs)
    optimizer: Any
    scheduler: Any
    scaler: torch.amp.GradScaler
    batches: Iterator[dict]
    position: StreamPosition
    meter: TaskLossMeter
    make_val_loader: Callable[[], Any]
    val_every: int  # steps between benchmark validations; 0 = off
    validator: BenchmarkValidator | None  # on the main process when benchmark validation is on
    dataset: dict  # the data's identity (model/stream.py), stored in every checkpoint


@dataclass
class Throughput:
    """Samples (over all processes) since the last log line, for samples per second."""

    start: float = field(default_factory=time.perf_counter)
    samples: int = 0

    def reset(self) -> None:
        self.start, self.samples = time.perf_counter(), 0


def train_loop(cfg: TrainConfig, run: Run, t: Training, start: int, steps: int, last: int) -> TrainResult:
    """Optimizer steps ``start`` to ``last`` of a ``steps``-step schedule: logging, validation, checkpoints."""
    result = TrainResult(step=start)
    set_train_mode(t.model)
    params = [p for p in t.model.parameters() if p.requires_grad]
    speed = Throughput()
    # A context manager: the bar is closed before an error is printed (a non-finite step, a refused save).
    with tqdm(total=steps, initial=start, disable=not run.is_main, desc=f"train[{cfg.train.stage}]") as bar:
        for step in range(start, last):
            done = step + 1
            mean_loss = optimizer_step(run, t, cfg.optim, params, speed, done)
            result.losses.append(mean_loss)
            result.step = done
            bar.update(1)
            if done % cfg.train.log_every == 0 or done == last:
                log_step(run, t, bar, done, mean_loss, speed)
            if cfg.train.eval_every and (done % cfg.train.eval_every == 0 or done == steps):
                val = evaluate(t.model, t.make_val_loader(), run.device, run.accelerator, t.position.counts)
                result.val_losses.append((done, val))
                if run.is_main:
                    bar.write(f"step {done}: validation loss {val:.4f}")
                _append_metrics(run, {"step": done, "val_loss": val,
                                      "val_unreadable_images": t.position.counts["val_unreadable_images"]})
            if t.val_every and (done % t.val_every == 0 or done == last):  # benchmark slices; the same on every process
                validate_on_benchmarks(cfg, run, t, done)
            if (cfg.train.save_every and done % cfg.train.save_every == 0) or done == last:
                checkpoint = save(cfg, run, t, done)
                if run.is_main:
                    result.checkpoint = checkpoint
    result.counts = t.position.counts
    run.accelerator.wait_for_everyone()
    run.accelerator.end_training()  # closes the trackers' files and runs
    return result


def optimizer_step(run: Run, t: Training, optim: OptimConfig, params: list, speed: Throughput, step: int) -> float:
    """Optimizer step ``step`` (counted from 1) over ``run.accum`` micro batches; returns its loss averaged over
    processes. A non-finite loss on any process, or a non-finite gradient, stops training before the step is
    applied (``check_finite_step``)."""
    step_loss = torch.zeros((), device=run.device)
    micro_losses, micro_batches = [], []  # this process's micro batches: for the message when one is non-finite
    for micro in range(run.accum):
        batch = t.position.next_batch(t.batches)
        micro_batches.append((t.position.consumed - 1, batch["example_ids"]))
        speed.samples += batch["input_ids"].shape[0] * run.world
        sync = contextlib.nullcontext() if micro == run.accum - 1 else run.accelerator.no_sync(t.model)
        with sync:
            loss = loss_step(t.model, batch, run.device, t.meter)  # autocast inside the model's parts
            run.accelerator.backward(t.scaler.scale(loss / run.accum))  # outside autocast
        step_loss += loss.detach().float() / run.accum
        micro_losses.append(loss.detach().float())
    t.scaler.unscale_(t.optimizer)
    if optim.grad_clip > 0:
        grad_norm = run.accelerator.clip_grad_norm_(params, optim.grad_clip)
    else:
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    # With the fp16 gradient scaler an infinite gradient is an overflow the scaler skips and answers by
    # lowering its scale (torch.amp's design); without it, a non-finite gradient would corrupt the weights.
    check_grad = not t.scaler.is_enabled() and grad_norm is not None
    mean_loss = run.accelerator.reduce(step_loss, "mean")
    loss_value, norm_value = torch.stack([mean_loss, grad_norm.float() if check_grad else mean_loss]).tolist()
    check_finite_step(run, step, loss_value, norm_value if check_grad else 0.0, micro_losses, micro_batches)
    t.scaler.step(t.optimizer)
    t.scaler.update()
    t.scheduler.step()
    t.optimizer.zero_grad(set_to_none=True)
    return loss_value


def check_finite_step(run: Run, step: int, loss: float, grad_norm: float, micro_losses: list[torch.Tensor],
                      micro_batches: list[tuple[int, list[str]]]) -> None:
    """Stop with a ``ValueError`` naming the step and the batch when the loss (mean over processes) or the
    gradient norm is not finite. Nothing of the step is applied or saved, so the checkpoints on disk keep
    the last finite state."""
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    local = torch.stack(micro_losses).tolist()
    bad = next((i for i, value in enumerate(local) if not math.isfinite(value)), None)
    if bad is not None:
        index, ids = micro_batches[bad]
        shown = ", ".join(ids[:4]) + (f", ... ({len(ids)})" if len(ids) > 4 else "")
        where = (f"the loss is {local[bad]} on batch {index} of process {run.rank}'s stream "
                 f"(micro batch {bad + 1} of {run.accum}; examples {shown})")
    elif not math.isfinite(loss):
        where = f"the loss is {loss} on another process"
    else:
        first, last = micro_batches[0][0], micro_batches[-1][0]
        where = (f"the gradient norm is {grad_norm} (loss {loss:.4f}) after batches {first}-{last} of process "
                 f"{run.rank}'s stream")
    saved = list_checkpoints(run.output_dir)
    kept = f"the newest checkpoint, {saved[-1]}, is untouched" if saved else "no checkpoint was saved"
    raise ValueError(
        f"training stopped at step {step}: {where}. The step was not applied and {kept}. Damaged weights or "
        "data, or a learning rate too high for them, give non-finite values: resume from an earlier checkpoint "
        "(move the newer ones away) or lower optim.lr_*"
    )


def log_step(run: Run, t: Training, bar, done: int, mean_loss: float, speed: Throughput) -> None:
    """Progress bar and a ``metrics.jsonl`` line: loss (overall and per task), learning rates, speed, counters."""
    t.position.flush(run.accelerator)
    samples_per_s = speed.samples / (time.perf_counter() - speed.start)
    lrs = {g["name"].split("/")[0]: g["lr"] for g in t.optimizer.param_groups}
    bar.set_postfix(loss=f"{mean_loss:.4f}", **{f"lr_{k}": f"{v:.2e}" for k, v in lrs.items()},
                    samples_s=f"{samples_per_s:.1f}")
    per_task = t.meter.take(lambda x: run.accelerator.reduce(x, "sum"))
    record = {"step": done, "loss": mean_loss, **{f"loss_{task}": v for task, v in per_task.items()},
              **{f"lr_{k}": v for k, v in lrs.items()}, "samples_per_s": samples_per_s, **t.position.counts}
    _append_metrics(run, record)
    speed.reset()


def validate_on_benchmarks(cfg: TrainConfig, run: Run, t: Training, done: int) -> None:
    """Benchmark slices scored on the main process; a new best score saves a checkpoint (``validation.select``)."""
    position = t.position.snapshot(run)
    if t.validator is not None:
        unwrapped = run.accelerator.unwrap_model(t.model)
        record = t.validator.run(unwrapped, done, lambda: _save(cfg, run, t, done, unwrapped, position))
        log_metrics(run.accelerator, record)
        set_train_mode(t.model)
    run.accelerator.wait_for_everyone()


def save(cfg: TrainConfig, run: Run, t: Training, done: int) -> Path | None:
    """Checkpoint at step ``done``: every process reports its stream position, the main process writes."""
    position = t.position.snapshot(run)
    run.accelerator.wait_for_everyone()
    if not run.is_main:
        return None
    return _save(cfg, run, t, done, run.accelerator.unwrap_model(t.model), position)


def _save(cfg: TrainConfig, run: Run, t: Training, done: int, model, position: dict) -> Path:
    return save_checkpoint(run.output_dir, model, t.optimizer, t.scheduler, done, cfg, run.device,
                           cfg.train.keep_checkpoints, t.scaler, {**position, "dataset": t.dataset})


def _append_metrics(run: Run, record: dict) -> None:
    if run.is_main:
        with (run.output_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    log_metrics(run.accelerator, record)  # to the trackers of train.log_with, if any


# ---------------------------------------------------------------------------------------------------
# Entry point of each process
# ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``model/launcher/train_worker.py CONFIG`` (one process per GPU under ``accelerate launch``)."""
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

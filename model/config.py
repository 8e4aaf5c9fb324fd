"""Typed training configuration, parsed once from YAML at the entry point and passed down as plain values.

Every knob states its unit, its trade-off and its "off" value. Defaults are the mBLIP mT0-XL recipe
(Geigle et al. 2024, Sec. 4 and App. A): LoRA r=8/alpha=16/dropout=0.05 on all attention and
feed-forward matrices, AdamW with weight decay 0.1, lr 1e-5 (Q-Former, projection) and 2e-4 (LoRA),
cosine schedule with 1000 warm-up steps, clipping 1.0, max sequence length 128.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    # Hub id or local directory of a BLIP-2 checkpoint. Only its ViT, Q-Former, query tokens and
    # projection are read; its (English) LLM weights are never loaded.
    blip2: str
    # Hub id or local directory of the multilingual LLM: mT0 (seq2seq) or BLOOMZ (decoder-only).
    llm: str
    # Load the frozen LLM in 8-bit or 4-bit NF4 (bitsandbytes, CUDA only). "none" = full precision.
    # mBLIP: 8-bit for mT0-XL, 4-bit for BLOOMZ-7B. Trades a little speed for ~2-4x less LLM memory.
    llm_quantization: Literal["none", "8bit", "4bit"] = "none"
    # 4-bit only: also quantise the quantisation constants (saves ~0.4 bit per weight, a little slower).
    # mBLIP's BLOOMZ-7B used NF4 without it; off: false.
    double_quantization: bool = False
    # Storage dtype of the frozen ViT. mBLIP keeps it in float32 (the vision side then runs under fp16
    # autocast, train.vision_autocast); bfloat16/float16 halve its memory (~2 GB for EVA ViT-g).
    vision_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    # Storage dtype of the frozen LLM's unquantised weights: "auto" = bfloat16 on a GPU, float32 on CPU.
    # Trainable weights (Q-Former, query tokens, projection, LoRA) always stay float32.
    llm_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # Recompute activations in the backward pass (LLM and Q-Former): ~30% slower, much less memory.
    # "auto" = on with a GPU, off on CPU. Off: false.
    gradient_checkpointing: Literal["auto", True, False] = "auto"
    # Placeholder text token whose embeddings are replaced by the projected query outputs.
    image_token: str = "<image>"
    # Offline architecture for `model-info`: a known name (see model/architectures.py) or null to read
    # config.json from the local directory / hub cache.
    blip2_architecture: str | None = None
    llm_architecture: str | None = None


class LoraSettings(_Section):
    rank: int = Field(8, ge=1)  # LoRA rank r; more = more capacity and parameters
    alpha: float = 16.0  # scale alpha/r on the LoRA update
    dropout: float = Field(0.05, ge=0.0, lt=1.0)  # dropout on the LoRA input; 0 = off
    # Linear layers of the LLM that get adapters; null = all attention and feed-forward matrices of
    # the LLM family (mT5: q,k,v,o,wi_0,wi_1,wo; BLOOM: query_key_value,dense,dense_h_to_4h,dense_4h_to_h).
    target_modules: tuple[str, ...] | None = None


class DataConfig(_Section):
    # Output directory of the data pipeline (the one holding manifest.json), or the manifest file.
    manifest: str | None = None
    # Language subset (project codes, e.g. [de, fr]); empty = every language in the manifest.
    languages: tuple[str, ...] = ()
    # Tasks to train on; empty = every task of the data (any task of pipeline/template_table.py).
    tasks: tuple[str, ...] = ()
    # Row sources to train on (the ``source`` column, e.g. web_capfilt, coco); empty = all.
    sources: tuple[str, ...] = ()
    # Token limit of the prompt, excluding the image placeholders. mBLIP: 128. Longer = more memory.
    # A longer prompt is cut inside its free text (question), so the instruction naming the language stays.
    max_length: int = Field(128, ge=4)
    # Token limit of the target (including its end token), separate from the prompt's. mBLIP: 128.
    max_target_length: int = Field(128, ge=2)
    # Image side in pixels fed to the ViT; null = the BLIP-2 vision config's image_size (224).
    image_size: int | None = None
    # RandomResizedCrop area range (fraction of the image); (1.0, 1.0) = no cropping. mBLIP: (0.5, 1).
    crop_scale: tuple[float, float] = (0.5, 1.0)
    # Random horizontal flip with probability 0.5 for training images; false = off.
    hflip: bool = True
    # Rows held in memory for shuffling a stream of Parquet batches; bigger = better mixing, more RAM.
    shuffle_buffer: int = Field(2048, ge=1)
    # Interleave the (one-language) shards at random, in proportion to their rows, before the shuffle
    # buffer, so every window of batches holds the whole language mix (mBLIP shuffled the whole mix).
    # Costs one open record batch per shard. false = shards one after another (long one-language runs).
    interleave: bool = True
    # DataLoader worker processes decoding images; 0 = decode in the training process.
    num_workers: int = Field(4, ge=0)
    # Rows held out for the validation loss: the rows with the smallest hash of example_id over the selected
    # languages, tasks and sources (model/data.py select_validation_rows). mBLIP held out 500 rows of its
    # mix. Another row of the same image may train. 0 = off.
    val_rows: int = Field(500, ge=0)
    # The stricter former rule: the fraction of images (hash of image_id) whose rows are all held out, so no
    # image is in both splits (0.005 = 0.5% of images). 0 = off; set val_rows to 0 to use it.
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    # Cap on validation examples per evaluation, over all processes and workers (bounded time); 0 = no cap.
    val_max_examples: int = Field(512, ge=0)
    # Probability (0-1) that a VQA row with a translated answer trains on the English answer instead,
    # its prompt then asking for an English answer (mBLIP: a 0.5 coin flip, prompt and target agree).
    # 0 = always the translated answer when present.
    english_answer_prob: float = Field(0.5, ge=0.0, le=1.0)
    # Decoder-only LLMs (BLOOMZ): what goes between the prompt's and the target's token ids. "none" = nothing,
    # as mBLIP (prompt and target tokenised separately, then concatenated). "space" = a space before a
    # target in a script written with spaces (none for zh/ja/th...), so its first word is tokenised as in
    # running text; costs nothing in length. No effect on mT0 (the target is the decoder's input).
    target_separator: Literal["none", "space"] = "none"


class OptimConfig(_Section):
    lr_qformer: float = 1e-5  # Q-Former, query tokens and projection (mBLIP: 1e-5)
    lr_lora: float = 2e-4  # LoRA matrices (mBLIP: 2e-4)
    lr_projection_stage: float = 5e-3  # lr of the optional projection-only stage (mBLIP: 5e-3)
    weight_decay: float = 0.1  # on tensors with >= 2 dims; biases and norm weights get 0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(1000, ge=0)  # linear warm-up, in optimizer steps; 0 = off
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)  # cosine floor as a fraction of the peak lr
    grad_clip: float = 1.0  # max global gradient norm; 0 = off


class TrainSettings(_Section):
    output_dir: str
    # "full": Q-Former + query tokens + projection + LoRA. "projection": only the projection
    # (mBLIP's optional first stage, on captions), Q-Former frozen, no LoRA.
    stage: Literal["full", "projection"] = "full"
    batch_size: int = Field(8, ge=1)  # micro batch per device (mBLIP: 8)
    # Examples per optimizer step over all processes (mBLIP: 128, whatever the number of GPUs). The
    # accumulation is derived: global_batch / (batch_size x processes), which must divide exactly.
    global_batch: int = Field(128, ge=1)
    epochs: float = Field(2.0, gt=0)  # passes over the training rows; ignored when max_steps is set
    max_steps: int | None = Field(None, ge=1)  # optimizer steps; null = from epochs and manifest rows
    seed: int = 0
    # Autocast of the vision side (ViT + Q-Former). mBLIP: fp16 mixed precision (with a gradient
    # scaler) over the float32 ViT. "auto" = fp16 on a GPU; on CPU the ViT's dtype when half, else off.
    vision_autocast: Literal["auto", "no", "fp16", "bf16"] = "auto"
    # Autocast of the projection and the LLM. mBLIP: bf16. "auto" = the LLM's dtype when it is half,
    # else bf16 on a GPU and off on CPU.
    llm_autocast: Literal["auto", "no", "bf16", "fp16"] = "auto"
    log_every: int = Field(10, ge=1)  # optimizer steps between progress-bar/log updates
    eval_every: int = Field(500, ge=0)  # optimizer steps between validation losses; 0 = off
    save_every: int = Field(1000, ge=0)  # optimizer steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = Field(2, ge=1)  # older checkpoints are deleted
    resume: bool = True  # continue from the newest checkpoint in output_dir when there is one
    # Start the full stage from the trainable weights of a projection-stage checkpoint directory.
    init_from: str | None = None
    # Experiment trackers besides metrics.jsonl (model/trackers.py): tensorboard, wandb, mlflow (each needs
    # its package). () = off.
    log_with: tuple[Literal["tensorboard", "wandb", "mlflow"], ...] = ()
    run_name: str | None = None  # the trackers' run name; None = the output_dir's folder name


class BenchmarkSlice(_Section):
    # A small slice of a benchmark scored during training (see model/evaluate/readers.py for the files).
    benchmark: Literal["xvnli", "xm3600", "xgqa"]
    data: str  # folder of the official annotation files
    images: str  # image folder
    languages: tuple[str, ...] = ()  # subset of the benchmark's languages; empty = all
    limit: int = Field(32, ge=1)  # items per language; more = steadier scores, slower validation
    split: str | None = None  # file split; null = the benchmark's default (test)


class ValidationConfig(_Section):
    # Benchmark slices generated and scored per language every ``every`` steps; empty = off.
    benchmarks: tuple[BenchmarkSlice, ...] = ()
    # "auto" = on only with a GPU (beam search over a slice is slow on CPU); true / false force it.
    enabled: Literal["auto", True, False] = "auto"
    every: int = Field(0, ge=0)  # optimizer steps between validations; 0 = at train.eval_every
    # Keep a copy of the checkpoint with the best value of this score in OUTPUT/best, e.g. "xvnli/mean"
    # or "xm3600/de"; null = no selection. Higher is better for every benchmark metric.
    select: str | None = None
    batch_size: int = Field(8, ge=1)  # items per generate call


class TrainConfig(_Section):
    model: ModelConfig
    lora: LoraSettings = LoraSettings()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainSettings
    validation: ValidationConfig = ValidationConfig()

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, raw):
        renamed = {("train", "grad_accum"): "train.global_batch (accumulation is derived from it)",
                   ("train", "mixed_precision"): "train.vision_autocast and train.llm_autocast",
                   ("model", "frozen_dtype"): "model.vision_dtype and model.llm_dtype"}
        for (section, key), new in renamed.items():
            if isinstance(raw, dict) and key in (raw.get(section) or {}):
                raise ValueError(f"{section}.{key} is no longer a knob: use {new}")
        return raw

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        lo, hi = self.data.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"data.crop_scale must satisfy 0 < low <= high <= 1, got {self.data.crop_scale}")
        accumulation_steps(self.train, 1)
        check_precision(self.model, self.train)
        if self.data.val_rows and self.data.val_fraction:
            raise ValueError(
                f"data.val_rows={self.data.val_rows} and data.val_fraction={self.data.val_fraction} both hold out "
                "validation data: keep one (val_rows: 0 to hold out by image, val_fraction: 0 to hold out rows)"
            )
        return self


HALF = {"float16": "fp16", "bfloat16": "bf16"}


def check_precision(model: ModelConfig, train: TrainSettings) -> None:
    """Refuse dtype/autocast combinations that fail with a dtype mismatch in the forward pass.

    The trainable Q-Former and projection are float32. A half-precision ViT needs autocast on the
    vision side (its features meet the Q-Former's float32 weights); a half-precision LLM needs autocast
    in its own dtype (the projection's output is written into the LLM's input embeddings).
    """
    if model.vision_dtype in HALF and train.vision_autocast == "no":
        raise ValueError(
            f"model.vision_dtype={model.vision_dtype} with train.vision_autocast=no: the half-precision ViT "
            "features meet the float32 Q-Former (dtype mismatch); use vision_autocast auto/fp16/bf16 or "
            "vision_dtype float32"
        )
    wanted = HALF.get(model.llm_dtype)
    if wanted and train.llm_autocast not in ("auto", wanted):
        raise ValueError(
            f"model.llm_dtype={model.llm_dtype} with train.llm_autocast={train.llm_autocast}: the projection "
            f"output must be {model.llm_dtype} to enter the LLM (dtype mismatch); use llm_autocast "
            f"auto/{wanted} or llm_dtype float32"
        )


def resolve_autocast(cfg: TrainConfig, device_type: str) -> tuple[str, str]:
    """(vision, llm) autocast modes ("no", "fp16", "bf16") for ``device_type`` ("cuda" or "cpu")."""
    return autocast_modes(cfg.model, cfg.train, device_type)


def autocast_modes(model: ModelConfig, train: TrainSettings, device_type: str) -> tuple[str, str]:
    """``resolve_autocast`` from the two sections it reads."""
    gpu = device_type == "cuda"
    vision, llm = train.vision_autocast, train.llm_autocast
    if vision == "auto":
        vision = "fp16" if gpu else HALF.get(model.vision_dtype, "no")
    if llm == "auto":
        llm_dtype = model.llm_dtype
        if llm_dtype == "auto":
            llm_dtype = "bfloat16" if gpu else "float32"
        llm = HALF.get(llm_dtype, "bf16" if gpu else "no")
    return vision, llm


def accumulation_steps(train: TrainSettings, processes: int) -> int:
    """Micro batches per optimizer step so that batch_size x accumulation x processes = global_batch."""
    per_pass = train.batch_size * processes
    if processes < 1 or train.global_batch % per_pass:
        raise ValueError(
            f"train.global_batch={train.global_batch} is not a multiple of train.batch_size={train.batch_size} "
            f"x {processes} processes = {per_pass}; choose a batch size and process count that divide it"
        )
    return train.global_batch // per_pass


def describe_batch(train: TrainSettings, processes: int) -> str:
    accum = accumulation_steps(train, processes)
    return (f"effective batch: {train.global_batch} ({train.batch_size} per device x accumulation {accum} "
            f"x {processes} processes)")


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """Parse a YAML training config; ``overrides`` is a nested dict merged on top (e.g. from a flow)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return TrainConfig.model_validate(raw)


def config_to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def cli_overrides(manifest: str | None, output_dir: str | None, max_steps: int | None) -> dict:
    """``load_config`` overrides from the command-line flags ``--manifest``, ``--output-dir``, ``--max-steps``."""
    overrides: dict = {}
    if manifest:
        overrides.setdefault("data", {})["manifest"] = manifest
    if output_dir:
        overrides.setdefault("train", {})["output_dir"] = output_dir
    if max_steps:
        overrides.setdefault("train", {})["max_steps"] = max_steps
    return overrides

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
    # dtype of the frozen weights (ViT, LLM): "auto" = bfloat16 on a GPU, float32 on CPU.
    # Trainable weights (Q-Former, query tokens, projection, LoRA) always stay float32.
    frozen_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
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
    # Tasks to train on; empty = all ("caption", "vqa").
    tasks: tuple[str, ...] = ()
    # Token budget of the LLM input (prompt; for decoder-only LLMs prompt + target), excluding the
    # image placeholders, and of the target. mBLIP: 128. Longer = more memory.
    max_length: int = Field(128, ge=4)
    # Image side in pixels fed to the ViT; null = the BLIP-2 vision config's image_size (224).
    image_size: int | None = None
    # RandomResizedCrop area range (fraction of the image); (1.0, 1.0) = no cropping. mBLIP: (0.5, 1).
    crop_scale: tuple[float, float] = (0.5, 1.0)
    # Random horizontal flip with probability 0.5 for training images; false = off.
    hflip: bool = True
    # Rows held in memory for shuffling a stream of Parquet batches; bigger = better mixing, more RAM.
    shuffle_buffer: int = Field(2048, ge=1)
    # DataLoader worker processes decoding images; 0 = decode in the training process.
    num_workers: int = Field(4, ge=0)
    # Fraction of images (hash of image_id, so no image is in both) held out for validation; 0 = off.
    val_fraction: float = Field(0.01, ge=0.0, lt=1.0)
    # Cap on validation examples per evaluation (bounded time); 0 = no cap.
    val_max_examples: int = Field(512, ge=0)
    # Coin flip between translated and English VQA answer (mBLIP chose the answer language at random);
    # 0 = always the translated answer when present.
    english_answer_prob: float = Field(0.0, ge=0.0, le=1.0)


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
    grad_accum: int = Field(4, ge=1)  # micro batches per optimizer step (mBLIP: 4 on 4 GPUs = 128)
    epochs: float = Field(2.0, gt=0)  # passes over the training rows; ignored when max_steps is set
    max_steps: int | None = Field(None, ge=1)  # optimizer steps; null = from epochs and manifest rows
    seed: int = 0
    # "auto" = bf16 autocast on a GPU, none on CPU.
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    log_every: int = Field(10, ge=1)  # optimizer steps between progress-bar/log updates
    eval_every: int = Field(500, ge=0)  # optimizer steps between validation losses; 0 = off
    save_every: int = Field(1000, ge=0)  # optimizer steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = Field(2, ge=1)  # older checkpoints are deleted
    resume: bool = True  # continue from the newest checkpoint in output_dir when there is one
    # Start the full stage from the trainable weights of a projection-stage checkpoint directory.
    init_from: str | None = None


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

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        lo, hi = self.data.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"data.crop_scale must satisfy 0 < low <= high <= 1, got {self.data.crop_scale}")
        return self


def load_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """Parse a YAML training config; ``overrides`` is a nested dict merged on top (e.g. from a flow)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return TrainConfig.model_validate(raw)


def config_to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)

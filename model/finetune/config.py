"""A task fine-tuning config (``configs/finetune/*.yaml``), parsed once into the recipe's settings and a
``TrainConfig`` for the unchanged trainer.

The YAML holds ``finetune:`` (recipe, checkpoint, training file, images), ``evaluate:`` (the benchmark's files
for the zero-shot cross-lingual evaluation afterwards) and the trainer's own sections ``data``, ``optim``,
``train``, ``validation`` (model/config.py documents their knobs) and optionally ``model`` (overrides of the
checkpoint's, e.g. its paths on this machine). The model and LoRA shape come from the checkpoint's
``config.yaml``, and ``train.init_from`` is the checkpoint, so the fine-tune starts from its trainable weights
(Q-Former, query tokens, projection, LoRA) and trains the same set. ``data.manifest`` is the prepared data
(``OUTPUT/data``, model/finetune/prepare.py). The trainer's resume, effective batch and precision rules apply
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from model.checkpoint import CONFIG_FILE, TRAINABLE_FILE, check_file, find_checkpoint, read_meta
from model.config import TrainConfig, load_config
from model.evaluate.benchmarks import get_benchmark, resolve_languages

TRAINER_SECTIONS = ("model", "data", "optim", "train", "validation")
DATA_DIR = "data"  # OUTPUT/data: the prepared training rows (the trainer's data.manifest)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FinetuneSettings(_Section):
    # Which benchmark the fine-tune is for; picks the training file's reader and the evaluation:
    # xgqa (GQA balanced train), xvnli (SNLI-VE train), marvl (NLVR2 train, two images), xflickrco (Flickr30k).
    recipe: Literal["xgqa", "xvnli", "marvl", "xflickrco"]
    # The re-aligned model to start from: a checkpoints/step-* folder, or a training output (its newest
    # checkpoint). `mblip finetune --checkpoint` overrides it.
    checkpoint: str | None = None
    train_file: str  # the published training file (see model/finetune/readers.py for each format)
    images: str  # the folder its image paths are relative to
    # Karpathy splits whose captions train (xflickrco only). ["train"] = the standard; add "restval" where a
    # split file has it (Flickr30k's has none).
    splits: tuple[str, ...] = ("train",)
    # A malformed record: "quarantine" (OUTPUT/data/quarantine.jsonl, counted) or "error" (stop, naming it).
    on_bad_record: Literal["quarantine", "error"] = "quarantine"


class EvaluateSettings(_Section):
    # Run the benchmark after training (zero-shot cross-lingual: the model saw English task data only).
    # false = train only (`mblip eval` can score the checkpoint later).
    enabled: bool = True
    data: str | None = None  # folder of the benchmark's annotation files (model/evaluate/readers.py)
    images: str | None = None  # its image folder
    languages: tuple[str, ...] = ()  # subset of the benchmark's languages; empty = all
    split: str | None = None  # null = the benchmark's default (test)
    limit: int | None = Field(None, ge=1)  # items per language; null = all
    batch_size: int = Field(8, ge=1)  # items per generate call
    skip_missing: bool = False  # count and skip records whose image is missing instead of stopping
    # The LLM's numerics (`mblip eval --quantization`): auto = as trained on a GPU (mT0 8-bit), fp32 on CPU.
    quantization: Literal["auto", "8bit", "4bit", "bf16", "fp32", "none"] = "auto"


@dataclass(frozen=True)
class FinetuneRun:
    settings: FinetuneSettings
    evaluate: EvaluateSettings
    train: TrainConfig  # data.manifest = OUTPUT/data, train.init_from = the checkpoint
    checkpoint: Path

    @property
    def output_dir(self) -> Path:
        return Path(self.train.train.output_dir)


def resolve_checkpoint(location: str | None) -> Path:
    """The checkpoint folder of ``location`` (a checkpoint, or a training output's newest), its trainable weights
    checked against the sizes and sha256 its ``state.json`` recorded."""
    if not location:
        raise ValueError("finetune.checkpoint is not set: pass --checkpoint runs/NAME/checkpoints/step-N (a "
                         "re-aligned model from `mblip train`) or set it in the config")
    checkpoint = find_checkpoint(Path(location))
    if checkpoint is None:
        raise FileNotFoundError(f"finetune.checkpoint: {location} is neither a training checkpoint "
                                "(checkpoints/step-*, with trainable.safetensors and state.json) nor a training "
                                "output holding one")
    check_file(checkpoint, TRAINABLE_FILE, read_meta(checkpoint))
    return checkpoint


def load_finetune_config(path: str | Path, checkpoint: str | None = None, output_dir: str | None = None,
                         max_steps: int | None = None) -> FinetuneRun:
    """Parse a fine-tuning YAML; ``checkpoint``, ``output_dir``, ``max_steps``: the command line's overrides."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    unknown = sorted(set(raw) - {"finetune", "evaluate", *TRAINER_SECTIONS})
    if unknown:
        hint = "; LoRA's shape comes from the checkpoint" if "lora" in unknown else ""
        raise ValueError(f"{path}: unknown section(s) {unknown}: a fine-tuning config has finetune, evaluate and "
                         f"the trainer's {', '.join(TRAINER_SECTIONS)}{hint}")
    for section, key, why in (("data", "manifest", "the recipe's prepared data"),
                              ("train", "init_from", "the checkpoint (finetune.checkpoint)")):
        if key in (raw.get(section) or {}):
            raise ValueError(f"{path}: {section}.{key} is set by the recipe ({why}); remove it")
    finetune = dict(raw.get("finetune") or {})
    if checkpoint:
        finetune["checkpoint"] = checkpoint
    settings = FinetuneSettings.model_validate(finetune)
    evaluate = EvaluateSettings.model_validate(raw.get("evaluate") or {})
    resolve_languages(get_benchmark(settings.recipe), evaluate.languages)  # an unknown language fails here
    found = resolve_checkpoint(settings.checkpoint)
    base = load_config(found / CONFIG_FILE)
    train = dict(raw.get("train") or {})
    train.update({k: v for k, v in (("output_dir", output_dir), ("max_steps", max_steps)) if v})
    if "output_dir" not in train:
        raise ValueError(f"{path}: train.output_dir is not set (where the fine-tune's checkpoints, data and scores go)")
    train["init_from"] = str(found)
    sections = {
        "model": {**base.model.model_dump(mode="json"), **(raw.get("model") or {})},
        "lora": base.lora.model_dump(mode="json"),
        "data": {**(raw.get("data") or {}), "manifest": str(Path(train["output_dir"]) / DATA_DIR)},
        "optim": raw.get("optim") or {},
        "train": train,
        "validation": raw.get("validation") or {},
    }
    return FinetuneRun(settings, evaluate, TrainConfig.model_validate(sections), found)

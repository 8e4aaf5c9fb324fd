"""``mblip finetune CONFIG``: prepare the recipe's training data, fine-tune from a re-aligned checkpoint with the
unchanged trainer (one process or ``accelerate launch``, resuming like ``mblip train``), then evaluate the result
zero-shot on the matching benchmark with ``model.evaluate.runner`` (``mblip eval``'s code).

Writes into ``train.output_dir``: ``data/`` (prepared rows, quarantine, manifest), ``finetune-train.yaml`` (the
resolved trainer config it launched), the trainer's checkpoints and ``metrics.jsonl``, and
``eval/<benchmark>.json`` with its predictions beside it. A rerun of the same command resumes the training from
its newest checkpoint (the prepared data is reused, so the stream matches) and evaluates again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from model.checkpoint import find_checkpoint
from model.config import config_to_yaml
from model.evaluate.runner import run_evaluation
from model.finetune.config import DATA_DIR, FinetuneRun, load_finetune_config
from model.finetune.prepare import prepare_task_data
from model.launch import launch_training

log = logging.getLogger(__name__)

TRAIN_CONFIG_FILE = "finetune-train.yaml"


def check_evaluation(run: FinetuneRun) -> None:
    """Before any training: the benchmark's folders exist when the evaluation is on."""
    if not run.evaluate.enabled:
        return
    for knob, value in (("evaluate.data", run.evaluate.data), ("evaluate.images", run.evaluate.images)):
        if not value:
            raise ValueError(f"{knob} is not set: the {run.settings.recipe} benchmark's folder (or evaluate.enabled: "
                             "false to train only)")
        if not Path(value).is_dir():
            raise FileNotFoundError(f"{knob}: {value} is not a folder (the {run.settings.recipe} benchmark's files)")


def run_finetune(config: str | Path, checkpoint: str | None = None, output_dir: str | None = None,
                 max_steps: int | None = None, stop_after: int | None = None, gpus: int = 1,
                 accelerate_config: str | Path | None = None, evaluate: bool = True,
                 progress: bool = True) -> dict[str, Any]:
    """Prepare, train, evaluate (see the module docstring). ``stop_after``: halt the training with a checkpoint
    after this many steps and skip the evaluation (the run is not finished); ``evaluate=False``: train only."""
    run = load_finetune_config(config, checkpoint, output_dir, max_steps)
    evaluate = evaluate and run.evaluate.enabled and stop_after is None
    if evaluate:
        check_evaluation(run)
    out = run.output_dir
    out.mkdir(parents=True, exist_ok=True)
    s = run.settings
    prepared = prepare_task_data(s.recipe, s.train_file, s.images, out / DATA_DIR, s.on_bad_record, s.splits)
    train_config = out / TRAIN_CONFIG_FILE
    train_config.write_text(config_to_yaml(run.train), encoding="utf-8")
    log.info("fine-tuning %s for %s from %s", out, s.recipe, run.checkpoint)
    summary = launch_training(train_config, gpus, stop_after=stop_after, accelerate_config=accelerate_config)
    result: dict[str, Any] = {"recipe": s.recipe, "from_checkpoint": str(run.checkpoint),
                              "data": {"manifest": str(prepared.root), "reused": prepared.reused, **prepared.counts},
                              "train": summary}
    if evaluate:
        result["eval"] = evaluate_finetuned(run, progress)
    return result


def evaluate_finetuned(run: FinetuneRun, progress: bool = True) -> dict:
    """The benchmark's scores of the fine-tune's newest checkpoint, written to ``OUTPUT/eval/<benchmark>.json``."""
    trained = find_checkpoint(run.output_dir)
    if trained is None:
        raise FileNotFoundError(f"{run.output_dir}: no checkpoint to evaluate")
    e = run.evaluate
    return run_evaluation(run.settings.recipe, e.data, e.images, trained,
                          run.output_dir / "eval" / f"{run.settings.recipe}.json", languages=e.languages or None,
                          limit=e.limit, skip_missing=e.skip_missing, split=e.split, batch_size=e.batch_size,
                          quantization=e.quantization, progress=progress)

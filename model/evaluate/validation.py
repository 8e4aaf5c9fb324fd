"""Validation on benchmark slices during training, logged per language, with best-checkpoint selection.

Configured by ``validation`` in the training config (``model/config.py: ValidationConfig``): a few
items per language of XVNLI, XM3600 or xGQA, generated with the benchmark's settings and scored with
its metric. Runs on the main process only; the model is put in eval mode and the RNG state is
restored afterwards, so training continues exactly as without validation. Each run appends
``{"step", "validation": {"xvnli/ar": ..., "xvnli/mean": ...}}`` to ``metrics.jsonl``. With
``select`` set, a better score saves a checkpoint at that step and copies it to ``OUTPUT/best``
(``best.json`` names the step, the score and its value).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from model.build import unwrap_blip2
from model.config import TrainConfig
from model.evaluate.benchmarks import get_benchmark, resolve_languages
from model.evaluate.generation import EvalModel
from model.evaluate.readers import read_benchmark
from model.evaluate.runner import generate_predictions, score_predictions

log = logging.getLogger(__name__)

BEST_DIR = "best"
BEST_FILE = "best.json"


class BenchmarkValidator:
    def __init__(self, cfg: TrainConfig, processor, decoder_only: bool, device):
        self.every = cfg.validation.every or cfg.train.eval_every
        self.select = cfg.validation.select
        self.batch_size = cfg.validation.batch_size
        self.output_dir = Path(cfg.train.output_dir)
        self.processor, self.decoder_only, self.device = processor, decoder_only, device
        self.slices = []
        for part in cfg.validation.benchmarks:
            spec = get_benchmark(part.benchmark)
            langs = resolve_languages(spec, part.languages)
            data = read_benchmark(part.benchmark, part.data, part.images, langs, part.split or spec.split, part.limit)
            self.slices.append((spec, langs, data.items))
        best = self.output_dir / BEST_FILE
        self.best = json.loads(best.read_text())["value"] if best.is_file() else None
        if self.select and self.select.split("/")[0] not in {s.name for s, _, _ in self.slices}:
            raise ValueError(
                f"validation.select {self.select!r} names no configured benchmark (benchmark/lang or benchmark/mean)"
            )

    def due(self, step: int, last: int) -> bool:
        return bool(self.every) and (step % self.every == 0 or step == last)

    def scores(self, model) -> dict[str, float]:
        """``{"bench/lang": score, "bench/mean": mean}`` on the slices with ``model`` (trainer's model)."""
        import torch

        em = EvalModel(unwrap_blip2(model), self.processor, self.decoder_only, self.device, "training")
        was_training = model.training
        model.eval()
        out: dict[str, float] = {}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for spec, langs, items in self.slices:
                done = generate_predictions(em, items, spec.generation, self.batch_size, False, [], progress=False)
                result, _ = score_predictions(spec.name, langs, done)
                out.update({f"{spec.name}/{lang}": row["score"] for lang, row in result["languages"].items()})
                if result["mean"] is not None:
                    out[f"{spec.name}/mean"] = result["mean"]
        model.train(was_training)
        return out

    def run(self, model, step: int, save_checkpoint: Callable[[], Path]) -> dict:
        """Score, log, append to metrics.jsonl, and keep the best checkpoint; returns the record."""
        scores = self.scores(model)
        for name, value in scores.items():
            log.info("step %d: validation %s = %.2f", step, name, value)
        record = {"step": step, "validation": scores}
        if self.select:
            value = scores.get(self.select)
            if value is None:
                raise ValueError(f"validation.select {self.select!r} is not among the scores {sorted(scores)}")
            if self.best is None or value > self.best:
                self.best = value
                checkpoint = save_checkpoint()
                self._keep_best(checkpoint, step, value)
                record["best"] = True
        with (self.output_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        return record

    def _keep_best(self, checkpoint: Path, step: int, value: float) -> None:
        tmp = self.output_dir / f".tmp-{BEST_DIR}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(checkpoint, tmp)
        shutil.rmtree(self.output_dir / BEST_DIR, ignore_errors=True)
        tmp.rename(self.output_dir / BEST_DIR)
        info = {"step": step, "metric": self.select, "value": value, "checkpoint": str(self.output_dir / BEST_DIR)}
        (self.output_dir / BEST_FILE).write_text(json.dumps(info, indent=2))
        log.info("step %d: best %s so far (%.2f), kept in %s", step, self.select, value, self.output_dir / BEST_DIR)


def validation_interval(cfg: TrainConfig, device) -> int:
    """Steps between benchmark validations; 0 = off (no benchmarks, or ``enabled: auto`` without a GPU)."""
    enabled = cfg.validation.enabled
    if enabled == "auto":
        enabled = device.type == "cuda"
    if not enabled or not cfg.validation.benchmarks:
        return 0
    return cfg.validation.every or cfg.train.eval_every


def make_validator(cfg: TrainConfig, assembled, device) -> BenchmarkValidator | None:
    """A validator when ``validation`` has benchmarks and is enabled (auto: on a GPU), else None."""
    if not validation_interval(cfg, device):
        return None
    return BenchmarkValidator(cfg, assembled.processor, assembled.decoder_only, device)

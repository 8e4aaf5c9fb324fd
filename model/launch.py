"""Start training from a config: in this process (one device), or ``accelerate launch`` over several GPUs.

Used by ``mblip train`` and the ``train`` flow. The multi-GPU path runs one process per GPU
(``python -m accelerate.commands.launch --multi_gpu --num_processes N .../model/launcher/train_worker.py
CONFIG``), each reading its own stripe of the data; the summary is read back from the run directory.
The worker is launched by its file path, not as a module, so nothing in the current directory can
shadow the trainer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from model.build import require_source
from model.checkpoint import check_init_from, list_checkpoints, read_meta
from model.config import accumulation_steps, cli_overrides, load_config
from model.train import train

TRAIN_WORKER = Path(__file__).resolve().parent / "launcher" / "train_worker.py"


def accelerate_command(config_path: str | Path, num_processes: int, extra_args: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        # Autocast is set per model part by the trainer (train.vision_autocast, train.llm_autocast).
        "--multi_gpu", "--num_processes", str(num_processes), "--mixed_precision", "no",
        str(TRAIN_WORKER), str(config_path), *extra_args,
    ]


def launch_training(
    config_path: str | Path,
    num_processes: int = 1,
    manifest: str | None = None,
    output_dir: str | None = None,
    max_steps: int | None = None,
    stop_after: int | None = None,
) -> dict:
    """Train (or resume) and return a JSON-able summary: step, checkpoint, last losses."""
    overrides = cli_overrides(manifest, output_dir, max_steps)
    cfg = load_config(config_path, overrides)
    # Fail here, before any process starts, on what the trainer would refuse.
    require_source(cfg.model.blip2, "model.blip2")
    require_source(cfg.model.llm, "model.llm")
    accumulation_steps(cfg.train, num_processes)
    check_init_from(cfg.train.init_from)
    if num_processes <= 1:
        result = train(cfg, stop_after=stop_after)
        return {
            "step": result.step,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "last_loss": result.losses[-1] if result.losses else None,
            "val_losses": result.val_losses,
            "output_dir": cfg.train.output_dir,
        }
    extra = []
    if manifest:
        extra += ["--manifest", manifest]
    if output_dir:
        extra += ["--output-dir", output_dir]
    if max_steps:
        extra += ["--max-steps", str(max_steps)]
    if stop_after:
        extra += ["--stop-after", str(stop_after)]
    subprocess.run(accelerate_command(config_path, num_processes, extra), check=True)
    return summarise_run(Path(cfg.train.output_dir), list_checkpoints(cfg.train.output_dir))


def summarise_run(output_dir: Path, checkpoints: list[Path]) -> dict:
    """Summary of a finished run from its files (metrics.jsonl and the newest checkpoint)."""
    records = []
    metrics = output_dir / "metrics.jsonl"
    if metrics.is_file():
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    losses = [r["loss"] for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    latest = checkpoints[-1] if checkpoints else None
    step = read_meta(latest)["step"] if latest else 0
    return {"step": step, "checkpoint": str(latest) if latest else None, "last_loss": losses[-1] if losses else None,
            "val_losses": val, "output_dir": str(output_dir)}

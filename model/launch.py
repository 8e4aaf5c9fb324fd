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

import yaml

from model.build import require_source
from model.checkpoint import check_init_from, list_checkpoints, read_meta
from model.config import accumulation_steps, cli_overrides, load_config
from model.train import train

TRAIN_WORKER = Path(__file__).resolve().parent / "launcher" / "train_worker.py"


def accelerate_command(config_path: str | Path, num_processes: int, extra_args: list[str],
                       accelerate_config: str | Path | None = None) -> list[str]:
    """The ``accelerate launch`` command line. Without ``accelerate_config``: one machine, ``num_processes``
    GPUs (``--multi_gpu``). With it: the user's ``accelerate config`` file (multi-node, FSDP, DeepSpeed, ...)
    decides the topology; ``num_processes`` > 1 still overrides its process count."""
    if accelerate_config is None:
        topology = ["--multi_gpu", "--num_processes", str(num_processes)]
    else:
        topology = ["--config_file", str(accelerate_config)]
        topology += ["--num_processes", str(num_processes)] if num_processes > 1 else []
    return [
        sys.executable, "-m", "accelerate.commands.launch", *topology,
        # Autocast is set per model part by the trainer (train.vision_autocast, train.llm_autocast).
        "--mixed_precision", "no",
        str(TRAIN_WORKER), str(config_path), *extra_args,
    ]


def accelerate_config_processes(path: str | Path) -> int:
    """``num_processes`` of an accelerate config file (YAML or JSON), checked to be readable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--accelerate-config {path}: no such file (write one with `accelerate config`)")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"--accelerate-config {path}: not valid YAML or JSON: {e}") from e
    if not isinstance(values, dict):
        raise ValueError(f"--accelerate-config {path}: expected a mapping of accelerate settings")
    processes = values.get("num_processes", 1)
    if not isinstance(processes, int) or processes < 1:
        raise ValueError(f"--accelerate-config {path}: num_processes must be a positive integer, got {processes!r}")
    return processes


def launch_training(
    config_path: str | Path,
    num_processes: int = 1,
    manifest: str | None = None,
    output_dir: str | None = None,
    max_steps: int | None = None,
    stop_after: int | None = None,
    accelerate_config: str | Path | None = None,
) -> dict:
    """Train (or resume) and return a JSON-able summary: step, checkpoint, last losses. ``accelerate_config``:
    an ``accelerate config`` file; the run is launched with it (``accelerate_command``)."""
    overrides = cli_overrides(manifest, output_dir, max_steps)
    cfg = load_config(config_path, overrides)
    # Fail here, before any process starts, on what the trainer would refuse.
    require_source(cfg.model.blip2, "model.blip2")
    require_source(cfg.model.llm, "model.llm")
    world = num_processes
    if accelerate_config is not None and num_processes <= 1:
        world = accelerate_config_processes(accelerate_config)
    accumulation_steps(cfg.train, world)
    check_init_from(cfg.train.init_from)
    if num_processes <= 1 and accelerate_config is None:
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
    subprocess.run(accelerate_command(config_path, num_processes, extra, accelerate_config), check=True)
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

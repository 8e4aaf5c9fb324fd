"""Experiment trackers (``train.log_with: [tensorboard, wandb, mlflow]``) through accelerate's trackers.

``metrics.jsonl`` in the run's folder stays the record the tools here read (``summarise_run``, resume); the
trackers get the same values, on the main process only: the run's name, its resolved config (flattened to
``section.key`` values), and at each logged step the loss overall and per task (``loss_caption``, ...),
each parameter group's learning rate (``lr_qformer``, ...), samples/s and the counters, the validation
loss (``val_loss``) and the benchmark-slice scores (``validation/xvnli/mean``, ...).

accelerate writes TensorBoard event files to ``<output_dir>/tensorboard/<run name>/``, W&B to its own folder
(``WANDB_MODE=offline`` keeps it local; ``wandb sync`` uploads later) and MLflow to ``MLFLOW_TRACKING_URI``
(default ``./mlruns``). Each tracker's package must be installed (``pip install tensorboard``, ``wandb``,
``mlflow``; the ``trackers`` extra has the first two).
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

TRACKERS = ("tensorboard", "wandb", "mlflow")
TENSORBOARD_DIR = "tensorboard"  # under the run's output_dir: one folder of event files per run name
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def tracker_project(output_dir: str | Path):
    """accelerate's project configuration: TensorBoard event files under ``<output_dir>/tensorboard/``."""
    from accelerate.utils import ProjectConfiguration

    return ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(Path(output_dir) / TENSORBOARD_DIR))


def run_name(output_dir: str | Path, name: str | None) -> str:
    """``train.run_name``, else the run folder's name."""
    return name or Path(output_dir).resolve().name


def flat_config(values: dict, prefix: str = "") -> dict[str, str | int | float | bool]:
    """The resolved config as ``section.key`` scalars (what TensorBoard's hparams and MLflow params take)."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{name}."))
        elif isinstance(value, (str, int, float, bool)):
            flat[name] = value
        else:  # lists, tuples, None
            flat[name] = json.dumps(value)
    return flat


def check_installed(log_with: tuple[str, ...]) -> None:
    """A tracker whose package is missing is an error naming what to install (before the model loads)."""
    import importlib.util

    missing = [t for t in log_with if importlib.util.find_spec(TRACKER_PACKAGES[t]) is None]
    if missing:
        raise ImportError(f"train.log_with: {', '.join(missing)} not installed; pip install "
                          f"{' '.join(TRACKER_PACKAGES[t] for t in missing)} (or remove it from train.log_with)")


def start_trackers(accelerator, log_with: tuple[str, ...], output_dir: Path, name: str, config: dict) -> None:
    """``init_trackers`` with the run's name and flattened config (a no-op without trackers)."""
    if not log_with:
        return
    init_kwargs = {"wandb": {"name": name, "dir": str(output_dir)}, "mlflow": {"run_name": name}}
    accelerator.init_trackers(name, config=flat_config(config),
                              init_kwargs={k: v for k, v in init_kwargs.items() if k in log_with})


def log_metrics(accelerator, record: dict) -> None:
    """The numeric values of a ``metrics.jsonl`` record, at its step (nested ``validation`` scores flattened),
    to the accelerator's trackers (none: nothing happens; only the main process logs)."""
    if not accelerator.trackers or "step" not in record:
        return
    values = {}
    for key, value in record.items():
        if key == "step":
            continue
        if isinstance(value, dict):
            values.update({f"{key}/{k}": v for k, v in value.items() if _is_number(v)})
        elif _is_number(value):
            values[key] = value
    if values:
        accelerator.log(values, step=int(record["step"]))


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)

"""The ``train`` flow: a finished data output (manifest) in, a trained re-alignment checkpoint out.

Wiring only: check that the manifest has kept shards for the configured languages, then start
training through ``model.launch`` (in the flow's process for one device, ``accelerate launch`` for
several GPUs), and publish the run summary as an artifact. Resume lives in the trainer (newest
checkpoint in the output directory), so re-running the flow after a crash continues the run.
"""

from __future__ import annotations

import logging

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from model.config import cli_overrides, load_config
from model.data import read_manifest
from model.launch import launch_training


@task(name="check-training-data", cache_policy=NO_CACHE)
def check_data_task(manifest: str, languages: list[str]) -> dict:
    data = read_manifest(manifest, languages)
    return {"files": len(data.files), "rows": data.rows, "languages": sorted({f.lang for f in data.files if f.lang})}


@task(name="train-realignment", cache_policy=NO_CACHE)
def train_task(config: str, gpus: int, manifest: str, output_dir: str | None, max_steps: int | None,
               stop_after: int | None) -> dict:
    _route_model_logs()
    return launch_training(config, gpus, manifest, output_dir, max_steps, stop_after)


@flow(name="train", log_prints=True)
def train_flow(
    config: str,
    manifest: str | None = None,
    gpus: int = 1,
    output_dir: str | None = None,
    max_steps: int | None = None,
    stop_after: int | None = None,
) -> dict:
    """Train on the kept rows of ``manifest`` (default: the config's data.manifest) with ``gpus`` processes."""
    from prefect.artifacts import create_markdown_artifact

    cfg = load_config(config, cli_overrides(manifest, output_dir, max_steps))
    data = check_data_task(cfg.data.manifest, list(cfg.data.languages))
    get_run_logger().info("training data: %d rows in %d shards, languages %s",
                          data["rows"], data["files"], data["languages"])
    summary = train_task(config, gpus, cfg.data.manifest, output_dir, max_steps, stop_after)
    create_markdown_artifact(
        key="train-summary",
        markdown=(
            f"# Re-alignment run\n\n- model: `{cfg.model.blip2}` + `{cfg.model.llm}` (stage {cfg.train.stage})\n"
            f"- data: `{cfg.data.manifest}` ({data['rows']} rows, {len(data['languages'])} languages)\n"
            f"- step: {summary['step']}, last loss: {summary['last_loss']}\n- checkpoint: `{summary['checkpoint']}`\n"
        ),
        description="Training run summary",
    )
    return summary


def _route_model_logs() -> None:
    """Records of the ``model`` loggers go to the Prefect run log."""
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("model")
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        logger.addHandler(APILogHandler())
    logger.setLevel(logging.INFO)

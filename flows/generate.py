"""The ``generate`` flow: ``pipeline.build.build_dataset`` with its stages as Prefect tasks.

One task per source for ingest, one task per chunk (thousands of rows) for the translation work, one
task for the final shards and manifest. The tasks are the pipeline's stage functions (``STAGES``),
with retries for transient errors; they run on threads here or on Dask workers, each worker process
loading its translator once. Resume is the pipeline's own (see ``pipeline.build``), not Prefect's cache.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows.lifecycle import start_guarded_embedded_server
from flows.runtime import (
    RETRY_DELAYS_S, ProgressReporter, make_task_runner, publish_stats_artifacts, retry_if_transient,
    route_pipeline_logs,
)
from pipeline.build import STAGES, build_dataset
from pipeline.config import PipelineConfig, load_config, with_output_dir
from pipeline.output_dir import check_output_dir, output_lock
from pipeline.outputs.stats import STATS
from pipeline.preflight import check_run

TASK_NAMES = {"ingest": "ingest-source", "chunk": "translate-chunk", "write": "write-shards"}


def _stage_task(stage: str):
    fn = STAGES[stage]

    @functools.wraps(fn)
    def run(*args, **kwargs):
        route_pipeline_logs()
        return fn(*args, **kwargs)

    # Out of memory is handled inside the engine (it halves the token budget and splits the batch); if it
    # still fails, the task is retried after a pause, when other work may have released memory.
    return task(run, name=TASK_NAMES[stage], retries=len(RETRY_DELAYS_S), retry_delay_seconds=RETRY_DELAYS_S,
                retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)


TASKS = {stage: _stage_task(stage) for stage in STAGES}


class PrefectRunner:
    """``pipeline.build.Runner`` on Prefect: stages are submitted as tasks to the flow's task runner."""

    def __init__(self, show_progress: bool = False):
        self.show_progress = show_progress

    def submit(self, stage: str, *args, **kwargs):
        return TASKS[stage].submit(*args, **kwargs)

    def as_completed(self, futures: list):
        return as_completed(futures)

    def progress(self, total: int, description: str) -> ProgressReporter:
        return ProgressReporter("chunk-progress", total, description, show_bar=self.show_progress)


def build_in_flow(config: PipelineConfig, show_progress: bool = False, **changes) -> dict:
    """``build_dataset`` on Prefect (call it inside a flow), then the run's artifacts."""
    route_pipeline_logs()
    manifest = build_dataset(config, PrefectRunner(show_progress), **changes)
    out = config.output.local
    publish_stats_artifacts(out, json.loads((out / STATS).read_text()))
    return manifest


def run_config(config: PipelineConfig | str | Path, out_dir: str | Path | None = None) -> PipelineConfig:
    """``config`` as parsed settings (a path is parsed here), its output folder replaced by ``out_dir``."""
    if not isinstance(config, PipelineConfig):
        config = load_config(config)
    return with_output_dir(config, out_dir) if out_dir else config


@flow(name="generate", log_prints=True)
def generate(config_path: str | None = None, out_dir: str | None = None, show_progress: bool = False,
             config: PipelineConfig | None = None) -> dict:
    """Build the dataset described by the YAML file ``config_path`` (deployments) or by ``config``, parsed
    already (the CLI); ``out_dir`` overrides its output folder.

    Rerunning it resumes: finished work is found on disk and skipped.
    """
    if (config is None) == (config_path is None):
        raise ValueError("generate needs one of config_path and config")
    return build_in_flow(run_config(config if config is not None else config_path, out_dir),
                         show_progress=show_progress)


def run_generate(config: PipelineConfig | str | Path, out_dir: str | None = None, show_progress: bool = False,
                 dask_address: str | None = None, workers: int | None = None) -> dict:
    """Entry point for the CLI: check the config (parsed settings, or a path parsed here, once), pick the
    task runner, then run the flow.

    A bad config, a missing model or image folder fail before the embedded Prefect server starts; that
    server ends with this process whatever ends it (``flows.lifecycle``)."""
    config = run_config(config, out_dir)
    out = check_output_dir(config.output.local)
    check_run(config)
    with output_lock(out):
        runner = make_task_runner(dask_address=dask_address, workers=workers or None)
        start_guarded_embedded_server()
        return generate.with_options(task_runner=runner)(config=config, show_progress=show_progress)


if __name__ == "__main__":  # python -m flows.generate CONFIG [OUT]
    import sys

    run_generate(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, show_progress=os.isatty(2))

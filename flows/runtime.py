"""Orchestration plumbing shared by the flows: task runners, retry policy, progress,
artifacts and log routing. Nothing here transforms data."""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path

from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.nllb.engine import is_out_of_memory

PIPELINE_LOGGER = "pipeline"

# OSError numbers worth a retry: the storage or network was briefly unavailable. A missing file, a
# permission problem or a full disk is not going to fix itself in ten seconds.
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name) for name in
    ("EIO", "EAGAIN", "EBUSY", "ETIMEDOUT", "ESTALE", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED",
     "ENETUNREACH", "ENETDOWN", "EHOSTUNREACH", "EINTR", "EREMOTEIO")
    if hasattr(errno, name)
)
PROGRESS_EVERY_S = 5.0  # seconds between progress-artifact updates
RETRY_DELAYS_S = [5, 30]  # bounded backoff: two retries, then the chunk fails and the run stops


def is_transient_error(error: BaseException) -> bool:
    """True for errors a retry can fix (I/O hiccups, out of memory); False for bad data and bugs."""
    if is_out_of_memory(error):
        return True
    if isinstance(error, (TimeoutError, ConnectionError, InterruptedError, BlockingIOError)):
        return True
    return isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry only what ``is_transient_error`` accepts."""
    error = state.result(raise_on_failure=False)
    retry = isinstance(error, BaseException) and is_transient_error(error)
    logging.getLogger(__name__).warning(
        "%s failed with %s: %s", task_run.name, type(error).__name__, "retrying" if retry else "not retrying"
    )
    return retry


def make_task_runner(dask_address: str | None = None, workers: int | None = None, threads: int | None = None):
    """Threads in this process (default), a new local Dask cluster of ``workers`` processes, or an
    existing Dask cluster at ``dask_address`` (``tcp://host:8786``; Kubernetes, Slurm, plain workers).

    On Dask each worker process loads its translator once (``load_translator`` caches per process);
    one thread per local worker keeps one chunk per process at a time.
    """
    if dask_address and workers:
        raise ValueError("give either --dask-address (an existing cluster) or --workers (a local one), not both")
    if dask_address or workers:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:
            raise ImportError("running on Dask needs the dask extra: pip install 'mblip-pipeline[dask]'") from e
        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs={
            "n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
        })
    return ThreadPoolTaskRunner(max_workers=threads)


def route_pipeline_logs(level: int = logging.INFO) -> None:
    """Send records of the ``pipeline`` loggers to the Prefect run log (idempotent).

    Equivalent to ``PREFECT_LOGGING_EXTRA_LOGGERS=pipeline`` (which ``flows/__init__`` sets by
    default), for processes where Prefect configured logging before that variable was seen.
    """
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger(PIPELINE_LOGGER)
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        handler = APILogHandler()
        handler.addFilter(_inside_a_run)  # the stages also run outside flows; those records stay local
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)


def _inside_a_run(record: logging.LogRecord) -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


class ProgressReporter:
    """A Prefect progress artifact (and a tqdm bar when ``show_bar``) for one long stage."""

    def __init__(self, key: str, total: int, description: str, show_bar: bool = False):
        from prefect.artifacts import create_progress_artifact

        self.total = max(total, 0)
        self.done = 0
        self._last = time.monotonic()
        self.artifact_id = create_progress_artifact(progress=0.0 if total else 100.0, key=key, description=description)
        self.bar = None
        if show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=description, unit="chunk")

    def advance(self, n: int = 1) -> None:
        from prefect.artifacts import update_progress_artifact

        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        now = time.monotonic()
        # One API call per PROGRESS_EVERY_S at most (and always the last one): progress stays live on
        # long stages without a call per chunk.
        if now - self._last >= PROGRESS_EVERY_S or self.done >= self.total:
            update_progress_artifact(artifact_id=self.artifact_id, progress=pct)
            self._last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def publish_stats_artifacts(out_dir: Path, stats: dict,
                            card_names: tuple[str, ...] = ("README.md", "DATASET_CARD.md")) -> None:
    """Per-language table and the dataset card (the card file the run wrote, else the totals)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    rows = []
    for lang, s in sorted(stats.get("languages", {}).items()):
        assigned = s.get("assigned") or 0
        rows.append({
            "lang": lang, "assigned": assigned, "kept": s.get("kept"), "rejected": s.get("rejected"),
            "keep_pct": round(100.0 * (s.get("kept") or 0) / assigned, 2) if assigned else None,
            "mean_bt_chrf": None if s.get("mean_bt_chrf") is None else round(s["mean_bt_chrf"], 2),
        })
    create_table_artifact(key="language-stats", table=rows, description=f"Per-language counts for {out_dir}")
    card = next((out_dir / n for n in card_names if (out_dir / n).is_file()), None)
    if card is not None:
        markdown = card.read_text(encoding="utf-8")
    else:
        totals = stats.get("totals", {})
        markdown = f"# Dataset {out_dir.name}\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in totals.items()) + "\n"
    create_markdown_artifact(key="dataset-card", markdown=markdown, description=f"Dataset card of {out_dir}")

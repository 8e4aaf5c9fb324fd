"""The ``generate`` flow: read → assign → translate → back-translate → filter → shard.

One task per source for ingest, one task per chunk (thousands of rows) for the translation work, one
task for the final shards and manifest. Tasks receive paths and plain values, never models: each
worker process loads its translator once through ``load_translator``'s per-process cache.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from pipeline.config import PipelineConfig, load_config, save_resolved_config
from pipeline.languages import resolve_languages
from pipeline.nllb.convert import read_model_metadata
from pipeline.nllb.engine import EngineSettings, load_translator
from pipeline.process import IngestResult, ingest_source, iter_quarantine, open_reader, process_chunk, processed_path
from pipeline.shard import write_outputs

WORK_DIR = "_work"


def _is_transient(task, task_run, state) -> bool:
    """Retry I/O hiccups and out-of-memory only; bad data fails at once."""
    try:
        state.result()
    except (OSError, MemoryError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth retrying
        return False
    return False


@task(name="ingest-source", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_is_transient)
def ingest_task(source_type: str, name: str, paths: dict, work_dir: str, chunk_rows: int) -> IngestResult:
    return ingest_source(open_reader(source_type, name, **paths), work_dir, chunk_rows)


@task(name="translate-chunk", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=_is_transient)
def process_chunk_task(
    chunk_path: str, out_path: str, model_dir: str, settings: EngineSettings, languages: tuple[str, ...],
    seed: int, mode: str, backtranslate: bool, min_bt_chrf: float,
) -> str:
    translator = load_translator(model_dir, settings)
    return str(process_chunk(
        chunk_path, out_path, translator, languages=resolve_languages(languages), seed=seed, mode=mode,
        backtranslate=backtranslate, min_bt_chrf=min_bt_chrf,
    ))


@task(name="write-shards")
def write_outputs_task(out_dir: str, processed: list[str], quarantine: list[str], ingest_counts: dict,
                       fan_out: int, shard_rows: int, row_group_rows: int, metadata: dict) -> dict:
    return write_outputs(out_dir, processed, quarantine, ingest_counts, fan_out, shard_rows, row_group_rows, metadata)


def engine_settings(config: PipelineConfig) -> EngineSettings:
    t = config.translation
    return EngineSettings(
        device=t.device, device_index=tuple(t.device_index), compute_type=t.compute_type,
        inter_threads=t.inter_threads, intra_threads=t.intra_threads, max_batch_tokens=t.max_batch_tokens,
        max_input_tokens=t.max_input_tokens, beam_size=t.beam_size, patience=t.patience,
        length_penalty=t.length_penalty, repetition_penalty=t.repetition_penalty,
        no_repeat_ngram_size=t.no_repeat_ngram_size, max_length_ratio=t.max_length_ratio,
    )


def resolve_model_dir(model: str) -> str:
    if model == "shipped":
        from pipeline.nllb.shipped import shipped_model_dir

        return str(shipped_model_dir())
    return model


@flow(name="generate", log_prints=True)
def generate(config_path: str, out_dir: str | None = None) -> dict:
    """Build the dataset described by ``config_path`` (output dir overridable)."""
    logger = get_run_logger()
    overrides = {"output": {"dir": str(Path(out_dir).resolve())}} if out_dir else None
    config = load_config(config_path, overrides)
    out = Path(config.output.dir)
    work = out / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    save_resolved_config(config, out / "config.resolved.yaml")
    languages = tuple(lang.code for lang in config.languages())
    model_dir = resolve_model_dir(config.translation.model)
    settings = engine_settings(config)

    ingests = {}
    for source in config.sources:
        paths = {k: str(v) for k, v in source.model_dump(include={"annotations", "questions", "path"}).items() if v}
        if source.type == "coco_karpathy":
            paths["splits"] = list(source.splits)
        ingests[source.source_name] = ingest_task.submit(source.type, source.source_name, paths, str(work), config.run.chunk_rows)

    futures = []
    for name, fut in ingests.items():
        result: IngestResult = fut.result()
        logger.info("%s: %d rows in %d chunks, %d quarantined", name, result.rows, len(result.chunks), result.quarantined)
        for chunk in result.chunks:
            futures.append(process_chunk_task.submit(
                chunk, str(processed_path(work, name, chunk)), model_dir, settings, languages,
                config.assignment.seed, config.assignment.mode, config.filter.backtranslate, config.filter.min_bt_chrf,
            ))
    processed = [f.result() for f in futures]
    counts = {name: {"rows": f.result().rows, "quarantined": f.result().quarantined} for name, f in ingests.items()}
    metadata = {
        "config_hash": config.config_hash(),
        "model": read_model_metadata(model_dir),
        "languages": list(languages),
        "image_roots": {s.source_name: str(s.images) for s in config.sources},
    }
    fan_out = len(languages) if config.assignment.mode == "all" else 1
    manifest = write_outputs_task(
        str(out), processed, [str(p) for p in iter_quarantine(work)], counts, fan_out,
        config.output.shard_rows, config.output.row_group_rows, metadata,
    )
    stats = manifest["totals"]
    create_table_artifact(
        key="generate-totals", table=[{"what": k, "rows": v} for k, v in stats.items()],
        description=f"Totals for {out}",
    )
    logger.info("wrote %s: %s", out, stats)
    return manifest

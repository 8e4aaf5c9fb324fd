"""The ``generate`` flow: read → assign → translate → back-translate → filter → shard.

One task per source for ingest, one task per chunk (thousands of rows) for the translation work, one
task for the final shards and manifest. Tasks receive paths and plain values, never models: each
worker process (a thread pool here, or Dask workers) loads its translator once through
``load_translator``'s per-process cache.

Resume does not depend on Prefect's cache: ingest is skipped while a source's files are unchanged,
and a processed chunk is found by a file name that encodes its input and settings (see
``pipeline.regenerate``), so a rerun after a kill only does the chunks that were not finished.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.lifecycle import start_guarded_embedded_server
from flows.runtime import (
    RETRY_DELAYS_S, ProgressReporter, load_once, make_task_runner, publish_stats_artifacts,
    retry_if_transient, route_pipeline_logs, run_bounded,
)
from pipeline.config import PipelineConfig, PromptConfig, load_config, resolved_config_text
from pipeline.output_dir import RESOLVED_CONFIG, WORK_DIR, check_output_dir, output_lock
from pipeline.filters.rules import FilterRules
from pipeline.languages import resolve_languages
from pipeline.nllb.convert import read_model_metadata
from pipeline.nllb.engine import EngineSettings
from pipeline.mix import mix_key, thresholds_from_chunks
from pipeline.process import (
    INGEST_DIR, INGEST_DONE, IngestResult, ingest_source, iter_quarantine, open_reader, run_chunk_plan, source_fingerprint,
)
from pipeline.regenerate import (
    ACTION_DONE, ACTION_PROCESS, ACTION_REDECIDE, ACTION_RESCORE, ChunkPlan, decision_key, plan_chunk,
    remove_temporaries, rescore_keys, translation_key,
)
from pipeline.assign import language_weights
from pipeline.recipe import recipe_metadata
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord
from pipeline.translate import open_translator


@task(name="ingest-source", retries=len(RETRY_DELAYS_S), retry_delay_seconds=RETRY_DELAYS_S,
      retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)
def ingest_task(source_type: str, name: str, paths: dict, work_dir: str, chunk_rows: int, force: bool = False,
                image_root: str | None = None) -> IngestResult:
    route_pipeline_logs()
    if force:  # read again even though the files look unchanged
        (Path(work_dir) / INGEST_DIR / name / INGEST_DONE).unlink(missing_ok=True)
    fingerprint = source_fingerprint({**paths, "check_images_under": image_root or ""}, chunk_rows)
    return ingest_source(open_reader(source_type, name, **paths), work_dir, chunk_rows, fingerprint, image_root)


@task(name="translate-chunk", retries=len(RETRY_DELAYS_S), retry_delay_seconds=RETRY_DELAYS_S,
      retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)
def process_chunk_task(
    plan: ChunkPlan, model_dir: str, settings: EngineSettings, languages: tuple[str, ...],
    seed: int, mode: str, backtranslate: bool, rules: dict, only_languages: tuple[str, ...] = (),
    cache_dir: str | None = None, prompts: dict | None = None, english_share: float | None = None,
    mix: dict | None = None, mix_seed: int = 0, reverse: str = "decode",
) -> str:
    """One chunk: process it, re-decide it from stored scores, or recompute some languages' rows."""
    route_pipeline_logs()
    # Engine + persistent translation cache, once per process (threads of a process share it). Out of
    # memory is handled inside the engine (it halves the token budget and splits the batch); if it still
    # fails, the task is retried after a pause, when other work may have released memory.
    return str(run_chunk_plan(
        plan, lambda: load_once(open_translator, model_dir, settings, cache_dir), resolve_languages(languages),
        seed, mode, backtranslate, FilterRules.model_validate(rules), tuple(only_languages),
        PromptConfig.model_validate(prompts or {}).settings(), english_share, mix=mix, mix_seed=mix_seed,
        reverse=reverse,
    ))


@task(name="write-shards", retries=len(RETRY_DELAYS_S), retry_delay_seconds=RETRY_DELAYS_S,
      retry_condition_fn=retry_if_transient, cache_policy=NO_CACHE)
def write_outputs_task(out_dir: str, processed: list[str], quarantine: list[str], ingest_counts: dict,
                       fan_out: int, shard_rows: int, row_group_rows: int, metadata: RunRecord, shard_bytes: int = 0,
                       resolved_config: str | None = None) -> dict:
    """Build every output in the staging folder, then move in only the files that changed (and log how many)."""
    route_pipeline_logs()
    return write_outputs(out_dir, processed, quarantine, ingest_counts, fan_out, shard_rows, row_group_rows, metadata,
                         shard_bytes=shard_bytes,
                         extra_files={RESOLVED_CONFIG: resolved_config} if resolved_config is not None else None)


def engine_settings(config: PipelineConfig) -> EngineSettings:
    return config.translation.engine_settings()


def resolve_model_dir(model: str) -> str:
    if model == "shipped":
        from pipeline.nllb.shipped import shipped_model_dir

        return str(shipped_model_dir())
    return model


def _source_paths(source, work: Path) -> dict:
    paths = {k: str(v) for k, v in source.model_dump(include={"annotations", "questions", "path"}).items() if v}
    if source.type.startswith("web_"):
        from pipeline.ingest.web_match import web_source_paths

        return {**paths, **web_source_paths(source, work)}
    if source.type not in ("coco_captions", "coco_karpathy", "vqav2"):
        return source.reader_params()
    if source.type == "coco_karpathy":
        paths["splits"] = list(source.splits)
    return paths


def build_dataset(config: PipelineConfig, force_sources: tuple[str, ...] = (), force_languages: tuple[str, ...] = (),
                  show_progress: bool = False, run_info: dict | None = None) -> dict:
    """The body both flows share (call it inside a flow): ingest, plan, process, publish.

    ``force_sources`` are re-read and fully reprocessed; ``force_languages`` have their rows
    recomputed in every chunk. Everything else is reused when its inputs and settings are unchanged.
    """
    with output_lock(check_output_dir(config.output.dir)):
        return _build_dataset(config, force_sources, force_languages, show_progress, run_info)


def _build_dataset(config: PipelineConfig, force_sources: tuple[str, ...], force_languages: tuple[str, ...],
                   show_progress: bool, run_info: dict | None) -> dict:
    logger = get_run_logger()
    route_pipeline_logs()
    out = Path(config.output.dir)
    work = out / WORK_DIR
    work.mkdir(parents=True, exist_ok=True)
    remove_temporaries(work)
    languages = tuple(lang.code for lang in config.languages())
    model_dir = resolve_model_dir(config.translation.model)
    settings = engine_settings(config)
    cache_dir = str(config.translation.cache_dir or work / "translation-cache") if config.translation.cache else None
    model_meta = read_model_metadata(model_dir)
    key_parts = (model_meta, f"{settings.decoding_key()},ct={settings.compute_type}", languages,
                 config.assignment.seed, config.assignment.mode, config.filter.backtranslate,
                 config.prompts.model_dump(mode="json"), config.assignment.english_share)
    tkey = translation_key(*key_parts, reverse=config.filter.reverse)
    rescore_from = rescore_keys(*key_parts, reverse=config.filter.reverse)
    dkey = decision_key(config.filter.model_dump(mode="json"))

    ingests = {
        s.source_name: ingest_task.submit(s.type, s.source_name, _source_paths(s, work), str(work),
                                          config.run.chunk_rows,
                                          force=s.source_name in force_sources,
                                          image_root=str(s.images) if s.check_images else None)
        for s in config.sources
    }
    plans: list[ChunkPlan] = []
    counts, web_stats = {}, {}
    results: dict[str, IngestResult] = {name: future.result() for name, future in ingests.items()}
    mix = thresholds_from_chunks([c for r in results.values() for c in r.chunks], config.mix.rules(), config.mix.seed)
    tkey = mix_key(tkey, mix, config.mix.seed)
    rescore_from = [mix_key(k, mix, config.mix.seed) for k in rescore_from]
    for name, result in results.items():
        counts[name] = {"rows": result.rows, "quarantined": result.quarantined, **result.counters}
        if result.extra:
            web_stats[name] = result.extra
        logger.info("%s: %d rows in %d chunks, %d quarantined", name, result.rows, len(result.chunks), result.quarantined)
        plans += [plan_chunk(work, name, c, tkey, dkey, force=name in force_sources, rescore_from=rescore_from)
                  for c in result.chunks]

    if force_languages:  # a re-decision would not recompute those rows: process such chunks instead
        plans = [dataclasses.replace(p, action=ACTION_PROCESS) if p.action in (ACTION_REDECIDE, ACTION_RESCORE) else p
                 for p in plans]
    todo = [p for p in plans if p.action != ACTION_DONE or force_languages]
    actions = {a: sum(p.action == a for p in plans)
               for a in (ACTION_DONE, ACTION_REDECIDE, ACTION_RESCORE, ACTION_PROCESS)}
    logger.info("chunks: %d finished earlier, %d to re-decide from stored scores, %d to rescore (no translation), "
                "%d to process%s", actions[ACTION_DONE], actions[ACTION_REDECIDE], actions[ACTION_RESCORE],
                actions[ACTION_PROCESS],
                f"; recomputing {', '.join(force_languages)} in every chunk" if force_languages else "")
    progress = ProgressReporter("chunk-progress", len(todo), "chunks", show_bar=show_progress)
    common = (model_dir, settings, languages, config.assignment.seed, config.assignment.mode,
              config.filter.backtranslate, config.filter.rules().model_dump(mode="json"), tuple(force_languages))
    run_bounded(
        (lambda p=p: process_chunk_task.submit(p, *common, cache_dir=cache_dir,
                                                       prompts=config.prompts.model_dump(mode="json"),
                                                       english_share=config.assignment.english_share,
                                                       mix=mix, mix_seed=config.mix.seed,
                                                       reverse=config.filter.reverse) for p in todo),
        config.run.concurrency, lambda _: progress.advance(),
    )
    progress.close()

    metadata = RunRecord(
        config_hash=config.config_hash(),
        model=model_meta,
        languages=list(languages),
        target_shares=dict(zip(languages, language_weights(config.languages(), config.assignment.english_share))),
        image_roots={s.source_name: str(s.images) for s in config.sources},
        sources={s.source_name: s.type for s in config.sources},
        pretty_name=config.output.pretty_name,
        settings=config.model_dump(mode="json", include={"translation", "filter", "assignment", "prompts"}),
        recipe=recipe_metadata(config),
        keys={"translation": tkey, "decision": dkey},
        mix={"rules": config.mix.rules(), "seed": config.mix.seed, "thresholds": mix},
        run={"chunks": actions, **(run_info or {"flow": "generate"})},
        web=web_stats,
    )
    fan_out = len(languages) if config.assignment.mode == "all" else 1
    manifest = write_outputs_task(
        str(out), [p.out for p in plans], [str(p) for p in iter_quarantine(work, counts)], counts, fan_out,
        config.output.shard_rows, config.output.row_group_rows, metadata, config.output.shard_bytes,
        resolved_config_text(config),
    )
    stats = _read_stats(out)
    publish_stats_artifacts(out, stats)
    logger.info("wrote %s: %s", out, manifest["totals"])
    return manifest


def _read_stats(out: Path) -> dict:
    import json

    from pipeline.outputs.stats import STATS

    return json.loads((out / STATS).read_text())


@flow(name="generate", log_prints=True)
def generate(config_path: str, out_dir: str | None = None, show_progress: bool = False) -> dict:
    """Build the dataset described by ``config_path`` (output dir overridable).

    Rerunning it resumes: finished work is found on disk and skipped.
    """
    overrides = {"output": {"dir": str(Path(out_dir).resolve())}} if out_dir else None
    config = load_config(config_path, overrides)
    return build_dataset(config, show_progress=show_progress)


def run_generate(config_path: str, out_dir: str | None = None, show_progress: bool = False,
                 dask_address: str | None = None, workers: int | None = None) -> dict:
    """Entry point for the CLI: check the config, pick the task runner, then run the flow.

    A bad config fails before the embedded Prefect server starts; that server ends with this process
    whatever ends it (``flows.lifecycle``)."""
    config = load_config(config_path)
    out = check_output_dir(Path(out_dir) if out_dir else config.output.dir)
    with output_lock(out):
        runner = make_task_runner(dask_address=dask_address, workers=workers or None)
        start_guarded_embedded_server()
        return generate.with_options(task_runner=runner)(config_path, out_dir=out_dir, show_progress=show_progress)


if __name__ == "__main__":  # python -m flows.generate CONFIG [OUT]
    import sys

    run_generate(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, show_progress=os.isatty(2))

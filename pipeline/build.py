"""Building a dataset: ingest → plan → run the chunks → write and publish. One path, whoever runs it.

``build_dataset(config, runner)`` is the whole job. The runner only decides *where* each stage call runs:
``InlineRunner`` (the default) calls the stages here, in order, in this process (tests, benchmarks,
plain Python); the Prefect flows pass a runner that submits the same stage functions as Prefect tasks
(threads, or Dask workers: ``flows.generate``). Stages receive paths and frozen typed settings (a source's
config, the ``ChunkJob``, the ``RunRecord`` and ``ShardLayout``), never loaded models: they pickle to workers.

Resume does not depend on the runner: ingest is skipped while a source's files are unchanged, a
processed chunk is found by a file name that encodes its input and settings (``pipeline.chunks``), and
shards are reused by their inputs' fingerprint, so a rerun after a kill only does what was not finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from pipeline.answers import frequent_answers
from pipeline.assign import language_weights
from pipeline.chunks import (
    ACTION_DONE, ACTION_PROCESS, ACTION_REDECIDE, ACTION_RESCORE, ChunkJob, count_actions, plan_chunks, run_chunk,
    run_keys,
)
from pipeline.config import PipelineConfig, check_model_languages, resolved_config_text
from pipeline.ingest.stage import IngestResult, ingest_stage, iter_quarantine
from pipeline.kill_points import kill_point
from pipeline.mix import thresholds_from_chunks
from pipeline.nllb.convert import read_model_metadata
from pipeline.nllb.shipped import shipped_model_dir
from pipeline.output_dir import RESOLVED_CONFIG, check_output_dir, output_lock
from pipeline.outputs.remote import publish_remote
from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs
from pipeline.recipe import recipe_metadata
from pipeline.run_record import RunRecord

log = logging.getLogger(__name__)


def write_stage(out_dir: str, processed: list[str], quarantine: list[str], record: RunRecord, *,
                ingest_counts: dict, layout: ShardLayout, fan_out: int, resolved_config: str | None = None,
                embed_images: bool = False) -> dict:
    """The write stage: every output built in the staging folder, then only the files that changed moved in
    (``pipeline.outputs.write.write_outputs``); ``resolved_config`` is published as ``config.resolved.yaml``;
    ``embed_images``: the kept shards carry their images (``output.images: embed``)."""
    return write_outputs(out_dir, processed, quarantine, record, ingest_counts=ingest_counts, layout=layout,
                         fan_out=fan_out, embed_images=embed_images,
                         extra_files={RESOLVED_CONFIG: resolved_config} if resolved_config is not None else None,
                         on_group_done=lambda group, reused: kill_point("shards"))  # a test hook (MBLIP_KILL_AT)


# The stage functions, by name: a runner runs ``STAGES[name](*args, **kwargs)`` somewhere.
STAGES: dict[str, Callable[..., Any]] = {"ingest": ingest_stage, "chunk": run_chunk, "write": write_stage}


class Progress(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class Runner(Protocol):
    """Where stage calls run. ``submit`` returns a future (``.result()``); ``as_completed`` yields
    futures as they finish; ``progress`` reports a stage's progress (a Prefect artifact, a bar...)."""

    def submit(self, stage: str, *args, **kwargs): ...
    def as_completed(self, futures: list) -> Iterator: ...
    def progress(self, total: int, description: str) -> Progress: ...


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class InlineRunner:
    """Every stage called here, when submitted, in this process: no orchestrator involved."""

    def submit(self, stage: str, *args, **kwargs) -> _Done:
        return _Done(STAGES[stage](*args, **kwargs))

    def as_completed(self, futures: list) -> Iterator[_Done]:
        return iter(list(futures))

    def progress(self, total: int, description: str) -> Progress:
        return _NoProgress()


def run_bounded(submits: Iterable[Callable[[], Any]], limit: int, on_done: Callable[[object], None],
                as_completed: Callable[[list], Iterator]) -> None:
    """Submit lazily so that at most ``limit`` calls are in flight; ``on_done(result)`` as each finishes.

    Keeps memory and scheduler load flat however many chunks there are. A failed call raises here.
    """
    if limit < 1:
        raise ValueError(f"run.concurrency must be at least 1, got {limit}")
    in_flight: list = []
    for submit in submits:
        if len(in_flight) >= limit:
            done = next(as_completed(in_flight))
            in_flight.remove(done)
            on_done(done.result())
        in_flight.append(submit())
    for done in as_completed(in_flight):
        on_done(done.result())


def remove_temporaries(work_dir: str | Path) -> int:
    """Delete half-written files (``.NAME.tmp-PID``) that a killed run left in the work folder.

    Call it at the start of a run, before any writer of this run exists (one run per output folder).
    """
    removed = 0
    for path in Path(work_dir).rglob(".*.tmp-*"):
        if path.is_file():
            path.unlink()
            removed += 1
    if removed:
        log.info("removed %d half-written files left by an interrupted run", removed)
    return removed


def resolve_model_dir(model: str) -> str:
    """``translation.model``: a converted model directory, or "shipped" for the model in the package."""
    if model == "shipped":
        return str(shipped_model_dir())
    return model


def build_dataset(config: PipelineConfig, runner: Runner | None = None, force_sources: tuple[str, ...] = (),
                  force_languages: tuple[str, ...] = (), run_info: dict | None = None) -> dict:
    """Ingest, plan, process, write and publish ``config``'s dataset; the manifest.

    ``force_sources`` are re-read and fully reprocessed; ``force_languages`` have their rows recomputed
    in every chunk. Everything else is reused when its inputs and settings are unchanged. The output
    folder is locked for the whole call (``pipeline.output_dir``). A URL output is built in its local
    folder (``output.local``), then uploaded (``pipeline.outputs.remote.publish_remote``).
    """
    check_model_languages(config, resolve_model_dir(config.translation.model))  # before the folder is touched
    with output_lock(check_output_dir(config.output.local)):
        manifest = _build(config, runner or InlineRunner(), tuple(force_sources), tuple(force_languages), run_info)
        if config.output.url:  # built locally; now upload what changed, the manifest last
            publish_remote(config.output.local, config.output.url)
        return manifest


def _build(config: PipelineConfig, runner: Runner, force_sources: tuple[str, ...], force_languages: tuple[str, ...],
           run_info: dict | None) -> dict:
    out, work = config.output.local, config.work_dir
    work.mkdir(parents=True, exist_ok=True)
    remove_temporaries(work)
    languages = tuple(lang.code for lang in config.languages())
    model_dir = resolve_model_dir(config.translation.model)
    cache_dir = str(config.translation.cache_dir or work / "translation-cache") if config.translation.cache else None
    model_meta = read_model_metadata(model_dir)

    ingests = {s.source_name: runner.submit("ingest", s, str(work), config.run.chunk_rows,
                                            force=s.source_name in force_sources, checks=config.input_checks)
               for s in config.sources}
    results: dict[str, IngestResult] = {name: future.result() for name, future in ingests.items()}
    counts, web_stats = {}, {}
    for name, result in results.items():
        counts[name] = {"rows": result.rows, "quarantined": result.quarantined, **result.counters}
        if result.extra:
            web_stats[name] = result.extra
        log.info("%s: %d rows in %d chunks, %d quarantined", name, result.rows, len(result.chunks), result.quarantined)

    mix = thresholds_from_chunks([c for r in results.values() for c in r.chunks], config.mix.rules(), config.mix.seed)
    # The answer rule counts each answer over its whole source (mBLIP: >= 15 times), before any chunk runs.
    min_count = config.answers.min_count
    answers = config.answers.settings(
        frequent_answers({name: r.chunks for name, r in results.items()}, min_count) if min_count > 1 else None)
    keys = run_keys(config, model_meta, config.translation.engine_settings(), mix, answers)
    plans = plan_chunks(work, {name: r.chunks for name, r in results.items()}, keys, force_sources, force_languages)
    todo = [p for p in plans if p.action != ACTION_DONE or force_languages]
    actions = count_actions(plans)
    log.info("chunks: %d finished earlier, %d to re-decide from stored scores, %d to rescore (no translation), "
             "%d to process%s", actions[ACTION_DONE], actions[ACTION_REDECIDE], actions[ACTION_RESCORE],
             actions[ACTION_PROCESS],
             f"; recomputing {', '.join(force_languages)} in every chunk" if force_languages else "")
    job = ChunkJob.from_config(config, model_dir, mix, force_languages, cache_dir, answers)
    progress = runner.progress(len(todo), "chunks")

    def chunk_done(_) -> None:
        progress.advance()
        kill_point("chunks")  # a test hook (MBLIP_KILL_AT): a chunk finished, the others not

    run_bounded((lambda p=p: runner.submit("chunk", p, job) for p in todo), config.run.concurrency, chunk_done,
                runner.as_completed)
    progress.close()

    record = RunRecord(
        config_hash=config.config_hash(),
        model=model_meta,
        languages=list(languages),
        target_shares=dict(zip(languages, language_weights(config.languages(), config.assignment.english_share))),
        image_roots={s.source_name: s.images_root for s in config.sources},
        sources={s.source_name: s.type for s in config.sources},
        pretty_name=config.output.pretty_name,
        settings=config.model_dump(mode="json", include={"translation", "filter", "assignment", "prompts", "answers"}),
        recipe=recipe_metadata(config),
        keys={"translation": keys.translation, "decision": keys.decision},
        mix={"rules": config.mix.rules(), "seed": config.mix.seed, "thresholds": mix},
        run={"chunks": actions, **(run_info or {"flow": "generate"})},
        web=web_stats,
    )
    manifest = runner.submit(
        "write", str(out), [p.out for p in plans], [str(p) for p in iter_quarantine(work, counts)], record,
        ingest_counts=counts, layout=config.output.layout(),
        fan_out=len(languages) if config.assignment.mode == "all" else 1, resolved_config=resolved_config_text(config),
        embed_images=config.output.images == "embed",
    ).result()
    log.info("wrote %s: %s", out, manifest["totals"])
    return manifest

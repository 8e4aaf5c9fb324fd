"""Chunks: their keys, their plans, and carrying out one chunk's plan.

A processed chunk's file name carries everything its content depends on, split in two keys:

* the *translation key*: model (id, revision, conversion fingerprint, quantisation), decoding settings
  and the device and compute type they run with, languages, assignment seed and mode, whether
  back-translation runs, the instruction mix, the task mix and ``PROCESS_VERSION``;
* the *decision key*: the filter thresholds.

plus a digest of the English chunk it came from. A rerun finds finished chunks by name, so a killed run
resumes without recomputing them, and a changed source, model or setting never reuses stale work. When
only the decision key changed, the chunk is re-decided from its stored scores (no translation); when
only the reverse check changed, it is rescored (forced decoding, no translation).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.answers import AnswerSettings, answer_key
from pipeline.filters.contrast import CONTRAST_SOURCES
from pipeline.io import sha256_file, write_parquet_atomic
from pipeline.mix import mix_key
from pipeline.nllb.engine import EngineSettings
from pipeline.process import (
    ProcessSettings, chunk_template_report, decide_rows, merge_language_rows, process_rows, rescore_rows,
    reset_decision, rows_for_languages,
)
from pipeline.translate import TranslationStats, open_translator, stats_path, write_stats_sidecar

PROCESSED_DIR = "processed"
# 2: English rows untranslated and exempt from translation checks, instruction mix; 3: the reference's
# template strings verbatim, the answer rule (answers with digits or of one character stay English)
PROCESS_VERSION = 3
DIGEST_CHARS = 12


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:DIGEST_CHARS]


def translation_key(model: dict, decoding: str, languages: Iterable[str], seed: int, mode: str,
                    backtranslate: bool, prompts: dict | None = None, english_share: float | None = None,
                    reverse: str = "decode", contrasts: int = CONTRAST_SOURCES) -> str:
    """Digest of everything that changes translations, prompts and scores (not the thresholds).

    ``reverse`` (the filter's reverse check) enters only when it is not "decode" and ``contrasts`` (the
    margin's contrast sources, 0 = no margin) only when it is not 4 and there are model signals, so
    outputs made before those knobs existed (all "decode" with four contrasts) keep their keys.
    """
    return _digest({
        **({"reverse": reverse} if reverse != "decode" else {}),
        **({"contrasts": contrasts} if backtranslate and contrasts != CONTRAST_SOURCES else {}),
        **({"prompts": prompts} if prompts else {}),
        **({"english_share": english_share} if english_share is not None else {}),
        "version": PROCESS_VERSION,
        "model": {k: model.get(k) for k in sorted(model) if k not in ("created", "converted_at")},
        "decoding": decoding,
        "languages": list(languages),
        "seed": seed,
        "mode": mode,
        "backtranslate": backtranslate,
    })


def decision_key(decision: dict) -> str:
    """Digest of the filter settings that turn scores into kept/rejected."""
    return _digest(decision)


def chunk_digest(chunk_path: str | Path) -> str:
    """Content digest of an English chunk file (the readers write it deterministically)."""
    return sha256_file(chunk_path)[:DIGEST_CHARS]


@dataclass(frozen=True)
class ChunkPlan:
    """Where one chunk's processed rows go, and how to get them."""

    chunk: str  # English chunk file
    out: str  # processed file for the current keys
    action: str  # "done" | "redecide" | "process"
    redecide_from: str | None = None  # processed file to re-decide (or rescore) from


ACTION_DONE, ACTION_REDECIDE, ACTION_RESCORE, ACTION_PROCESS = "done", "redecide", "rescore", "process"
# Reverse modes that decode a back-translation: only their outputs can serve a mode that needs one.
DECODING_MODES = ("decode", "both")


def rescore_keys(model: dict, decoding: str, languages: Iterable[str], seed: int, mode: str,
                 backtranslate: bool, prompts: dict | None = None, english_share: float | None = None,
                 reverse: str = "decode", contrasts: int = CONTRAST_SOURCES) -> list[str]:
    """Translation keys of stored outputs that hold the same translations as the current settings and
    need only forced-decoding scores to match them (another reverse mode with the same ``contrasts``,
    or no model signals at all): a regeneration after a change of ``filter.reverse`` scores, it does not
    translate. Without margins (``contrasts`` 0) an output with four-contrast margins (every output made
    before ``filter.contrasts``) serves too: its margins are dropped. Another change of ``contrasts``
    reprocesses (the translation cache answers the translations)."""
    if not backtranslate:
        return []
    candidates = [(True, r, contrasts) for r in ("score", "decode", "both") if r != reverse and
                  (reverse not in DECODING_MODES or r in DECODING_MODES)]
    if contrasts == 0:
        candidates += [(True, r, CONTRAST_SOURCES) for r in ("score", "decode", "both")
                       if reverse not in DECODING_MODES or r in DECODING_MODES]
    if reverse not in DECODING_MODES:
        candidates.append((False, "decode", contrasts))
    return [translation_key(model, decoding, languages, seed, mode, bt, prompts, english_share, reverse=r,
                            contrasts=k)
            for bt, r, k in candidates]


def processed_file(work_dir: str | Path, source: str, chunk_path: str | Path, digest: str, tkey: str,
                   dkey: str) -> Path:
    """``processed/{source}/{tkey}/{dkey}/{chunk}-{digest}.parquet``: one folder per decision, so a
    folder holds exactly one version of each chunk (and of its stats sidecar)."""
    stem = Path(chunk_path).stem
    return Path(work_dir) / PROCESSED_DIR / source / tkey / dkey / f"{stem}-{digest}.parquet"


def plan_chunk(work_dir: str | Path, source: str, chunk_path: str | Path, tkey: str, dkey: str,
               force: bool = False, rescore_from: Iterable[str] = ()) -> ChunkPlan:
    """Decide what a chunk needs: nothing, a re-decision from stored scores, a rescore of an output
    stored under one of the ``rescore_from`` translation keys (see ``rescore_keys``), or processing."""
    digest = chunk_digest(chunk_path)
    out = processed_file(work_dir, source, chunk_path, digest, tkey, dkey)
    if force:
        return ChunkPlan(str(chunk_path), str(out), ACTION_PROCESS)
    if out.exists():
        return ChunkPlan(str(chunk_path), str(out), ACTION_DONE)
    siblings = sorted(p for p in out.parent.parent.glob(f"*/{out.name}") if p != out)
    if siblings:
        return ChunkPlan(str(chunk_path), str(out), ACTION_REDECIDE, str(siblings[0]))
    source_dir = out.parent.parent.parent
    for other in rescore_from:
        stored = sorted(source_dir.glob(f"{other}/*/{out.name}"))
        if stored:
            return ChunkPlan(str(chunk_path), str(out), ACTION_RESCORE, str(stored[0]))
    return ChunkPlan(str(chunk_path), str(out), ACTION_PROCESS)




@dataclass(frozen=True)
class RunKeys:
    """The keys of one run's chunks (see the module docstring)."""

    translation: str
    decision: str
    rescore_from: tuple[str, ...] = ()  # translation keys of stored outputs a rescore can start from


def run_keys(config, model_meta: dict, settings: EngineSettings, mix: dict,
             answers: AnswerSettings | None = None) -> RunKeys:
    """The keys of a run of ``config`` with the model described by ``model_meta``, on this machine
    (``answers``: the answer rule with the run's answer counts; None = the config's, nothing counted)."""
    answers = answers if answers is not None else config.answers.settings()
    languages = tuple(lang.code for lang in config.languages())
    # the device and compute type that will actually run here (``auto`` resolved; the translation cache
    # records the effective compute type too): a run resumed on another device or compute type
    # reprocesses its chunks instead of reusing other numerics
    device, compute_type = settings.resolve()
    decoding = f"{settings.decoding_key()},dev={device},ct={compute_type}"
    parts = (model_meta, decoding, languages, config.assignment.seed, config.assignment.mode,
             config.filter.backtranslate, config.prompts.model_dump(mode="json"), config.assignment.english_share)
    contrasts = config.filter.margin_contrasts()
    tkey = translation_key(*parts, reverse=config.filter.reverse, contrasts=contrasts)
    rescore_from = rescore_keys(*parts, reverse=config.filter.reverse, contrasts=contrasts)
    return RunKeys(mix_key(answer_key(tkey, answers), mix, config.mix.seed),
                   decision_key(config.filter.model_dump(mode="json")),
                   tuple(mix_key(answer_key(k, answers), mix, config.mix.seed) for k in rescore_from))


def plan_chunks(work_dir: str | Path, chunks: dict[str, Iterable[str]], keys: RunKeys,
                force_sources: Iterable[str] = (), force_languages: Iterable[str] = ()) -> list[ChunkPlan]:
    """A plan for every English chunk (source name -> chunk files). ``force_sources`` are processed
    again; with ``force_languages`` a chunk that would be re-decided or rescored is processed instead
    (that would not recompute those languages' rows)."""
    force_sources = set(force_sources)
    plans = [plan_chunk(work_dir, name, c, keys.translation, keys.decision, force=name in force_sources,
                        rescore_from=keys.rescore_from)
             for name, files in chunks.items() for c in files]
    if tuple(force_languages):
        plans = [dataclasses.replace(p, action=ACTION_PROCESS) if p.action in (ACTION_REDECIDE, ACTION_RESCORE) else p
                 for p in plans]
    return plans


def count_actions(plans: Iterable[ChunkPlan]) -> dict[str, int]:
    plans = list(plans)
    return {a: sum(p.action == a for p in plans)
            for a in (ACTION_DONE, ACTION_REDECIDE, ACTION_RESCORE, ACTION_PROCESS)}


@dataclass(frozen=True)
class ChunkJob:
    """What every chunk of a run is processed with: the model, its engine settings and the processing
    settings, all frozen typed values that pickle to Dask workers as they are; the translator is loaded
    where the job runs, once per process."""

    model_dir: str
    engine: EngineSettings
    process: ProcessSettings
    only_languages: tuple[str, ...] = ()  # recompute just these languages' rows of finished chunks
    cache_dir: str | None = None  # persistent translation cache (None = off)

    @classmethod
    def from_config(cls, config, model_dir: str, mix: dict, only_languages: Iterable[str] = (),
                    cache_dir: str | None = None, answers: AnswerSettings | None = None) -> ChunkJob:
        """The job of a run of ``config`` (a ``PipelineConfig``) with the task mix's thresholds ``mix`` and
        the answer rule ``answers`` (with the run's answer counts; None = the config's, nothing counted)."""
        process = ProcessSettings(
            languages=tuple(config.languages()), seed=config.assignment.seed, mode=config.assignment.mode,
            english_share=config.assignment.english_share, backtranslate=config.filter.backtranslate,
            rules=config.filter.rules(), reverse=config.filter.reverse, contrasts=config.filter.margin_contrasts(),
            prompts=config.prompts.settings(),
            mix=mix or {}, mix_seed=config.mix.seed,
            answers=answers if answers is not None else config.answers.settings(),
        )
        return cls(model_dir=str(model_dir), engine=config.translation.engine_settings(), process=process,
                   only_languages=tuple(only_languages), cache_dir=cache_dir)


_LOAD_LOCK = threading.Lock()


def job_translator(job: ChunkJob):
    """The job's translator (engine + persistent cache), loaded once per process: under a lock, so two
    threads starting together do not both load it (``open_translator`` caches per process)."""
    with _LOAD_LOCK:
        return open_translator(job.model_dir, job.engine, job.cache_dir)


def run_chunk(plan: ChunkPlan, job: ChunkJob) -> str:
    """The chunk stage: carry out ``plan`` with ``job``'s settings; the output file's path."""
    return str(run_chunk_plan(plan, job, lambda: job_translator(job)))


def run_chunk_plan(plan: ChunkPlan, job: ChunkJob, get_translator: Callable[[], object]) -> Path:
    """Carry out one chunk's plan (see ``plan_chunk``) and return its output path.

    Re-deciding from stored scores needs no model; ``get_translator()`` is only called when something
    has to be translated or scored, so a threshold change never loads one. A rescore (stored outputs
    of another reverse mode) scores the missing signals and never translates. ``job.only_languages``
    recomputes just those languages' rows of an already finished chunk. Out of memory is handled in
    the engine (it halves the token budget and splits the batch).
    """
    out, settings = Path(plan.out), job.process
    if plan.action == ACTION_REDECIDE:
        frame = reset_decision(pl.read_parquet(plan.redecide_from))
        sidecar = stats_path(plan.redecide_from)
        if sidecar.exists():  # the translation counters are the same: nothing was translated again
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sidecar, stats_path(out))
        return write_parquet_atomic(decide_rows(frame, backtranslate=settings.backtranslate, rules=settings.rules),
                                    out)
    translator = get_translator()
    if plan.action == ACTION_RESCORE:
        stats = TranslationStats()
        frame = rescore_rows(pl.read_parquet(plan.redecide_from), translator, settings.backtranslate, settings.rules,
                             settings.reverse, stats, settings.contrasts)
        sidecar = stats_path(plan.redecide_from)
        data = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        if data:  # keep the translation and template counters of the run that translated these rows
            old = TranslationStats.from_dict(data["translation"])
            for key in ("score_requested", "score_distinct", "score_cache_hits", "scored"):
                setattr(old, key, getattr(stats, key))
            stats = old
        write_stats_sidecar(out, stats, data.get("templates"), data.get("template_texts"))
        return write_parquet_atomic(frame, out)
    rows = pl.read_parquet(plan.chunk)
    if job.only_languages and plan.action == ACTION_DONE:
        subset = rows_for_languages(rows, settings.languages, job.only_languages, settings.seed, settings.mode,
                                    settings.english_share)
        fresh = process_rows(subset, settings, translator)
        return write_parquet_atomic(merge_language_rows(pl.read_parquet(out), fresh, job.only_languages), out)
    stats = TranslationStats()
    frame = process_rows(rows, settings, translator, stats=stats)
    write_stats_sidecar(out, stats, **chunk_template_report(frame, translator, settings))  # dedup / cache counters
    return write_parquet_atomic(frame, out)



"""The per-chunk stages, composed: read → assign → translate → back-translate → score → decide.

Everything here works on one bounded chunk at a time and on file paths between stages, so a chunk is
the unit of work, retry and resume for whichever orchestrator runs it (Prefect locally, on Dask, or
plain Python in tests). A chunk whose output file exists is not recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.assign import assign_languages
from pipeline.filters.quality import DEFAULT_REVERSE, MODEL_SIGNALS as MODEL_SIGNAL_COLUMNS, apply_quality_filter
from pipeline.filters.rules import FilterRules, decide
from pipeline.ingest import CocoCaptionsReader, KarpathyCocoReader, SourceError, Vqav2Reader
from pipeline.ingest.images import quarantine_missing_images
from pipeline.io import write_json_atomic, write_parquet_atomic
from pipeline.languages import Language
from pipeline.mix import mark_mixed_out, mixed_out
from pipeline.schema import ROW_SCHEMA, STATUS_KEPT, STATUS_REJECTED, conform
from pipeline.answers import translate_answers
from pipeline.templates import PromptSettings, add_prompts, template_report
from pipeline.translate import TranslationStats, stats_path, translate_frame, write_stats_sidecar

log = logging.getLogger(__name__)

INGEST_DIR = "ingest"
PROCESSED_DIR = "processed"
QUARANTINE_DIR = "quarantine"
INGEST_DONE = "_INGESTED.json"


def open_reader(source_type: str, name: str, **paths):
    """Reader for a source config's plain values (``SourceConfig.reader_params``)."""
    from pipeline.ingest.registry import open_task_reader

    reader = open_task_reader(source_type, name, paths)
    if reader is not None:
        return reader
    if source_type == "coco_captions":
        return CocoCaptionsReader(paths["annotations"], name=name, root=paths.get("root"))
    if source_type == "coco_karpathy":
        return KarpathyCocoReader(paths["path"], splits=tuple(paths.get("splits") or ("train", "restval")), name=name,
                                  root=paths.get("root"))
    if source_type == "vqav2":
        return Vqav2Reader(paths["questions"], paths["annotations"], name=name, root=paths.get("root"))
    if source_type in ("web_capfilt", "web_match"):
        from pipeline.ingest.web_match import open_web_reader

        return open_web_reader(source_type, name, paths)
    raise ValueError(f"unknown source type {source_type!r}")


def chunk_name(index: int) -> str:
    return f"chunk-{index:05d}.parquet"


@dataclass(frozen=True)
class IngestResult:
    source: str
    chunks: tuple[str, ...]  # paths of the English row chunks
    rows: int
    quarantined: int
    counters: dict = field(default_factory=dict)  # what the reader dropped inside kept records, by name
    extra: dict | None = None  # a reader's own statistics (web sources: sampling, fetch, matching)

    @property
    def records(self) -> int:
        return self.rows + self.quarantined


def source_fingerprint(paths: dict, chunk_rows: int) -> str:
    """Size and modification time of a source's files, plus the chunk size: a change means re-ingest."""
    parts = {"chunk_rows": chunk_rows}
    for key, value in sorted(paths.items()):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, str):  # a knob (number, mapping): part of the identity as it is
                parts[key] = item
                continue
            path = Path(item)
            parts[f"{key}:{item}"] = [path.stat().st_size, path.stat().st_mtime_ns] if path.is_file() else item
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def ingest_source(reader, work_dir: str | Path, chunk_rows: int, fingerprint: str | None = None,
                  image_root: str | Path | None = None) -> IngestResult:
    """Stream a source into English row chunks plus quarantine chunks; skipped when already done.

    With ``image_root``, rows whose image is not a file under it are quarantined (``image_missing``).

    A finished ingest is reused only while ``fingerprint`` (see ``source_fingerprint``) is unchanged: a
    source that grew or was replaced is read again, and its old chunks are removed first.
    """
    work_dir = Path(work_dir)
    src_dir = work_dir / INGEST_DIR / reader.name
    done = src_dir / INGEST_DONE
    if done.exists():
        meta = json.loads(done.read_text())
        if meta.get("fingerprint") == fingerprint:
            # stored relative to the source's ingest folder: a moved or copied output reads its own chunks
            chunks = tuple(str(src_dir / Path(c).name) for c in meta["chunks"])
            return IngestResult(reader.name, chunks, meta["rows"], meta["quarantined"], meta.get("counters") or {},
                                meta.get("extra"))
        done.unlink()
    for old in [*src_dir.glob("chunk-*.parquet"), *(work_dir / QUARANTINE_DIR / reader.name).glob("chunk-*.parquet")]:
        old.unlink()
    chunks, rows, bad, counters = [], 0, 0, {}
    for batch in reader.iter_batches(chunk_rows):
        for key, n in batch.counters.items():
            counters[key] = counters.get(key, 0) + n
        if not batch.rows.height and not batch.quarantine.height:
            continue  # only counters (the reader's last flush)
        if image_root is not None:
            batch = quarantine_missing_images(batch, image_root)
        path = write_parquet_atomic(batch.rows, src_dir / f"chunk-{len(chunks):05d}.parquet")
        chunks.append(str(path))
        if batch.quarantine.height:
            write_parquet_atomic(batch.quarantine, work_dir / QUARANTINE_DIR / reader.name / Path(path).name)
        rows += batch.rows.height
        bad += batch.quarantine.height
    if rows + bad == 0:  # e.g. a Karpathy split selection that matches no image
        raise SourceError(f"source {reader.name!r} yields no records: check its files and options")
    result = IngestResult(reader.name, tuple(chunks), rows, bad, counters, getattr(reader, "stats", None) or None)
    write_json_atomic({"chunks": [Path(c).name for c in result.chunks], "rows": rows, "quarantined": bad,
                       "counters": counters, "fingerprint": fingerprint, "extra": result.extra}, done)
    log.info("ingested %s: %d rows, %d quarantined, %d chunks", reader.name, rows, bad, len(chunks))
    return result


def processed_path(work_dir: str | Path, source: str, chunk_path: str | Path) -> Path:
    return Path(work_dir) / PROCESSED_DIR / source / Path(chunk_path).name


def process_rows(
    rows: pl.DataFrame,
    languages: tuple[Language, ...],
    translator,
    seed: int = 0,
    mode: str = "proportional",
    backtranslate: bool = True,
    min_bt_chrf: float | None = None,
    stats: TranslationStats | None = None,
    rules: FilterRules | None = None,
    prompts: PromptSettings = PromptSettings(),
    english_share: float | None = None,
    mix: dict[str, list[float]] | None = None,
    mix_seed: int = 0,
    reverse: str = DEFAULT_REVERSE,
) -> pl.DataFrame:
    """The pure chunk transformation: English rows in, translated, scored and decided rows out.

    ``mix`` (task -> thresholds, ``pipeline.mix.mix_thresholds``) leaves rows out of the task mix:
    they are rejected untranslated. Rows with a ``preset_lang`` keep their text (see ``preset_rows``).

    ``rules`` are the filter thresholds (defaults when None); ``min_bt_chrf``, when given, overrides
    theirs. Without ``backtranslate`` only the cheap checks run. ``prompts``: the instruction mix.
    ``reverse`` picks the model's reverse check (``quality.REVERSE_MODES``).
    """
    rows = rows.with_row_index("_order")
    parts = []
    mix = mix or {}
    if mix:
        reasons = mixed_out(rows, mix, mix_seed)
        out = pl.Series(reasons, dtype=pl.String).is_not_null()
        if out.any():  # left out by the task mix: assigned a language for the stats, never translated
            assigned = assign_languages(rows.filter(out), languages, seed=seed, mode=mode, english_share=english_share)
            parts.append(mark_mixed_out(assigned, [r for r in reasons if r is not None]))
            rows = rows.filter(~out)
    has_preset = "preset_lang" in rows.columns
    preset = rows["preset_lang"].is_not_null() if has_preset else pl.repeat(False, rows.height, eager=True)
    if preset.any():
        parts.append(add_prompts(preset_rows(rows.filter(preset)), translator, settings=prompts))
        rows = rows.filter(~preset)
    # Rows assigned English stay English: translate_frame copies them and the quality filter leaves
    # only its input checks to them (pipeline/filters/quality.py).
    frame = assign_languages(rows, languages, seed=seed, mode=mode, english_share=english_share)
    frame = translate_frame(frame, translator, stats=stats)
    frame = translate_answers(frame, translator, stats=stats)
    rules = _rules(rules, min_bt_chrf)
    # Model signals only for languages the model was trained on (all of them for NLLB-200): a model
    # that does not know a language would reject all of it for the wrong reason.
    model_languages = getattr(translator, "languages", None)
    frame = add_prompts(frame, translator, settings=prompts, rules=prompts.template_rules,
                        check_model=backtranslate, model_languages=model_languages)
    frame = apply_quality_filter(frame, translator if backtranslate else None, rules, model_languages=model_languages,
                                 reverse=reverse, stats=stats)
    if parts:
        frame = pl.concat([conform(f, {**ROW_SCHEMA, "_order": pl.UInt32}) for f in (frame, *parts)]).sort("_order")
    return conform(frame, ROW_SCHEMA)


def chunk_template_report(frame: pl.DataFrame, translator, backtranslate: bool = True,
                          prompts: PromptSettings = PromptSettings(), **_) -> dict:
    """The stats sidecar's template part for a chunk processed with these parameters (the others of
    ``process_rows`` are accepted and do not matter: templates do not depend on the run's thresholds)."""
    counts, texts = template_report(frame, translator, prompts, prompts.template_rules, backtranslate,
                                    getattr(translator, "languages", None))
    return {"templates": counts, "template_texts": texts}


def preset_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows whose source fixed the language and wrote them in it (``preset_lang``): nothing to
    translate or to filter as a translation; kept, unless a text is empty."""
    from pipeline.languages import get_language

    codes = [get_language(code) for code in rows["preset_lang"].to_list()]
    return untranslated_rows(rows.with_columns(
        pl.Series("lang", [c.code for c in codes], dtype=pl.String),
        pl.Series("lang_nllb", [c.nllb for c in codes], dtype=pl.String),
    ))


def untranslated_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Preset rows keep their text in their ``lang``: kept unless empty."""
    empty = rows["text_en"].is_null() | (rows["text_en"].str.strip_chars() == "")
    return rows.with_columns(
        pl.col("text_en").alias("text_tgt"), pl.col("context_en").alias("context_tgt"),
        pl.col("answer_en").alias("answer_tgt"), pl.col("answer_en").is_not_null().alias("answer_translated"),
        pl.lit(False).alias("translation_truncated"),
        pl.when(empty).then(pl.lit(STATUS_REJECTED)).otherwise(pl.lit(STATUS_KEPT)).alias("status"),
        pl.when(empty).then(pl.lit("input:empty_text_en")).otherwise(pl.lit(None, dtype=pl.String))
        .alias("reject_reason"),
    )


def decide_rows(
    frame: pl.DataFrame, backtranslate: bool = True, min_bt_chrf: float | None = None, rules: FilterRules | None = None
) -> pl.DataFrame:
    """Stored signals in, ``status``/``reject_reason`` out: all a threshold change has to redo.

    Without ``backtranslate`` the model signals a previous run stored are ignored.
    """
    if not backtranslate:
        frame = frame.with_columns(
            [pl.lit(None, dtype=frame.schema[c]).alias(c) for c in MODEL_SIGNAL_COLUMNS if c in frame.columns]
        )
    return conform(decide(frame, _rules(rules, min_bt_chrf)), ROW_SCHEMA)


def _rules(rules: FilterRules | None, min_bt_chrf: float | None) -> FilterRules:
    rules = rules if rules is not None else FilterRules()
    if min_bt_chrf is not None:
        rules = rules.model_copy(update={"min_bt_chrf": min_bt_chrf})
    return rules


def process_chunk(chunk_path: str | Path, out_path: str | Path, translator, **params) -> Path:
    """Run ``process_rows`` on one ingested chunk and write it atomically; skip if already written."""
    out_path = Path(out_path)
    if out_path.exists():
        return out_path
    rows = pl.read_parquet(chunk_path)
    stats = TranslationStats()
    frame = process_rows(rows, translator=translator, stats=stats, **params)
    # Sidecar counters (dedup factor, cache hit rate, template drops) for the run summary; written
    # before the chunk so a present chunk always has its stats.
    write_stats_sidecar(out_path, stats, **chunk_template_report(frame, translator, **params))
    return write_parquet_atomic(frame, out_path)


def rescore_rows(frame: pl.DataFrame, translator, backtranslate: bool, rules: FilterRules, reverse: str,
                 stats: TranslationStats | None = None) -> pl.DataFrame:
    """Stored rows of another reverse mode in, the model signals ``reverse`` adds computed by forced
    decoding only (translations, answers and the stored scores ``reverse`` uses are kept), decided rows
    out. Signals ``reverse`` does not compute are cleared, so the result equals a fresh run's."""
    from pipeline.filters.quality import REVERSE_SIGNALS, compute_model_signals
    from pipeline.regenerate import reset_decision

    frame = reset_decision(frame)
    if backtranslate:
        frame = compute_model_signals(frame, translator, model_languages=getattr(translator, "languages", None),
                                      reverse=reverse, stats=stats, missing_only=True)
        frame = frame.with_columns([pl.lit(None, dtype=frame.schema[c]).alias(c) for c in MODEL_SIGNAL_COLUMNS
                                    if c in frame.columns and c not in REVERSE_SIGNALS[reverse]])
    return decide_rows(frame, backtranslate=backtranslate, rules=rules)


def run_chunk_plan(
    plan, get_translator, languages: tuple[Language, ...], seed: int, mode: str, backtranslate: bool,
    rules: FilterRules, only_languages: tuple[str, ...] = (), prompts: PromptSettings = PromptSettings(),
    english_share: float | None = None, mix: dict | None = None, mix_seed: int = 0, reverse: str = DEFAULT_REVERSE,
) -> Path:
    """Carry out one chunk's plan (see ``pipeline.regenerate.plan_chunk``) and return its output path.

    Re-deciding from stored scores needs no model; ``get_translator()`` is only called when something
    has to be translated or scored, so a threshold change never loads one. A rescore (stored outputs
    of another reverse mode) scores the missing signals and never translates. ``only_languages``
    recomputes just those languages' rows of an already finished chunk.
    """
    from pipeline.regenerate import (
        ACTION_DONE, ACTION_REDECIDE, ACTION_RESCORE, merge_language_rows, reset_decision, rows_for_languages,
    )

    out = Path(plan.out)
    if plan.action == ACTION_REDECIDE:
        frame = reset_decision(pl.read_parquet(plan.redecide_from))
        sidecar = stats_path(plan.redecide_from)
        if sidecar.exists():  # the translation counters are the same: nothing was translated again
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sidecar, stats_path(out))
        return write_parquet_atomic(decide_rows(frame, backtranslate=backtranslate, rules=rules), out)
    translator = get_translator()
    if plan.action == ACTION_RESCORE:
        stats = TranslationStats()
        frame = rescore_rows(pl.read_parquet(plan.redecide_from), translator, backtranslate, rules, reverse, stats)
        sidecar = stats_path(plan.redecide_from)
        data = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        if data:  # keep the translation and template counters of the run that translated these rows
            old = TranslationStats.from_dict(data["translation"])
            for key in ("score_requested", "score_distinct", "score_cache_hits", "scored"):
                setattr(old, key, getattr(stats, key))
            stats = old
        write_stats_sidecar(out, stats, data.get("templates"), data.get("template_texts"))
        return write_parquet_atomic(frame, out)
    params = dict(languages=languages, seed=seed, mode=mode, backtranslate=backtranslate, rules=rules, prompts=prompts,
                  english_share=english_share, mix=mix, mix_seed=mix_seed, reverse=reverse)
    rows = pl.read_parquet(plan.chunk)
    if only_languages and plan.action == ACTION_DONE:
        subset = rows_for_languages(rows, languages, only_languages, seed, mode, english_share)
        fresh = process_rows(subset, translator=translator, **params)
        return write_parquet_atomic(merge_language_rows(pl.read_parquet(out), fresh, only_languages), out)
    stats = TranslationStats()
    frame = process_rows(rows, translator=translator, stats=stats, **params)
    write_stats_sidecar(out, stats, **chunk_template_report(frame, translator, **params))  # dedup / cache counters
    return write_parquet_atomic(frame, out)


def iter_quarantine(work_dir: str | Path, sources: Iterable[str] | None = None) -> Iterator[Path]:
    """Quarantine chunks of ``sources`` (all when ``None``): a source dropped from the config is not counted."""
    root = Path(work_dir) / QUARANTINE_DIR
    if sources is None:
        yield from sorted(root.glob("*/chunk-*.parquet"))
        return
    for source in sorted(sources):
        yield from sorted((root / source).glob("chunk-*.parquet"))

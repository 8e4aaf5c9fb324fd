"""The chunk transformation: English rows in; assigned, translated, back-translated, scored and decided
rows out (``process_rows``), plus what a regeneration redoes from stored rows: a new decision
(``decide_rows``), the signals of another reverse mode (``rescore_rows``), some languages' rows.

Pure functions of a frame and a translator: ``pipeline.chunks`` runs them on one chunk file at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from pipeline.answers import AnswerSettings, translate_answers
from pipeline.assign import MODE_ALL, assign_languages
from pipeline.filters.contrast import CONTRAST_SOURCES
from pipeline.filters.quality import (
    DEFAULT_REVERSE, MARGIN_SIGNALS, MODEL_SIGNALS as MODEL_SIGNAL_COLUMNS, REVERSE_SIGNALS, apply_quality_filter,
    compute_model_signals,
)
from pipeline.filters.rules import FilterRules, decide
from pipeline.languages import Language, get_language
from pipeline.mix import mark_mixed_out, mixed_out
from pipeline.schema import ROW_SCHEMA, STATUS_KEPT, STATUS_REJECTED, conform
from pipeline.templates import PromptSettings, add_prompts, template_report
from pipeline.translate import TranslationStats, translate_frame


@dataclass(frozen=True)
class ProcessSettings:
    """What ``process_rows`` does to a chunk, the translator aside. Frozen typed values, so a chunk job
    carries them to Dask workers as they are (``pipeline.chunks.ChunkJob``)."""

    languages: tuple[Language, ...]  # the run's languages
    seed: int = 0  # the language assignment's seed (``pipeline.assign``)
    mode: str = "proportional"  # one language per example, or "all" of them
    english_share: float | None = None  # share kept in English (None: English's mC4 share)
    backtranslate: bool = True  # the model signals; without them only the cheap checks decide
    rules: FilterRules = field(default_factory=FilterRules)  # the filter thresholds
    reverse: str = DEFAULT_REVERSE  # the model's reverse check (``quality.REVERSE_MODES``)
    contrasts: int = CONTRAST_SOURCES  # other sources per source margin; 0 = no margin (``FilterConfig.contrasts``)
    prompts: PromptSettings = field(default_factory=PromptSettings)  # the instruction mix
    answers: AnswerSettings = field(default_factory=AnswerSettings)  # the answer rule and the run's answer counts
    mix: dict[str, list[float]] = field(default_factory=dict)  # task -> thresholds (``pipeline.mix.mix_thresholds``)
    mix_seed: int = 0


def process_rows(rows: pl.DataFrame, settings: ProcessSettings, translator,
                 stats: TranslationStats | None = None) -> pl.DataFrame:
    """The pure chunk transformation: English rows in, translated, scored and decided rows out.

    Rows left out by the task mix (``settings.mix``) are rejected untranslated. Rows with a
    ``preset_lang`` keep their text (see ``preset_rows``). ``stats`` counts what was translated.
    """
    s = settings
    rows = rows.with_row_index("_order")
    parts = []
    if s.mix:
        reasons = mixed_out(rows, s.mix, s.mix_seed)
        out = pl.Series(reasons, dtype=pl.String).is_not_null()
        if out.any():  # left out by the task mix: assigned a language for the stats, never translated
            parts.append(mark_mixed_out(_assign(rows.filter(out), s), [r for r in reasons if r is not None]))
            rows = rows.filter(~out)
    has_preset = "preset_lang" in rows.columns
    preset = rows["preset_lang"].is_not_null() if has_preset else pl.repeat(False, rows.height, eager=True)
    if preset.any():
        parts.append(add_prompts(preset_rows(rows.filter(preset)), translator, settings=s.prompts))
        rows = rows.filter(~preset)
    # Rows assigned English stay English: translate_frame copies them and the quality filter leaves
    # only its input checks to them (pipeline/filters/quality.py).
    frame = translate_frame(_assign(rows, s), translator, stats=stats)
    frame = translate_answers(frame, translator, stats=stats, settings=s.answers)
    # Model signals only for languages the model was trained on (all of them for NLLB-200): a model
    # that does not know a language would reject all of it for the wrong reason.
    model_languages = getattr(translator, "languages", None)
    frame = add_prompts(frame, translator, settings=s.prompts, rules=s.prompts.template_rules,
                        check_model=s.backtranslate, model_languages=model_languages)
    frame = apply_quality_filter(frame, translator if s.backtranslate else None, s.rules,
                                 model_languages=model_languages, reverse=s.reverse, stats=stats,
                                 contrasts=s.contrasts)
    if parts:
        frame = pl.concat([conform(f, {**ROW_SCHEMA, "_order": pl.UInt32}) for f in (frame, *parts)]).sort("_order")
    return conform(frame, ROW_SCHEMA)


def _assign(rows: pl.DataFrame, s: ProcessSettings) -> pl.DataFrame:
    return assign_languages(rows, s.languages, seed=s.seed, mode=s.mode, english_share=s.english_share)


def chunk_template_report(frame: pl.DataFrame, translator, settings: ProcessSettings) -> dict:
    """The stats sidecar's template part for a chunk processed with ``settings`` (only the instruction
    mix and whether the model checks templates matter: templates do not depend on the run's thresholds)."""
    counts, texts = template_report(frame, translator, settings.prompts, settings.prompts.template_rules,
                                    settings.backtranslate, getattr(translator, "languages", None))
    return {"templates": counts, "template_texts": texts}


def preset_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows whose source fixed the language and wrote them in it (``preset_lang``): nothing to
    translate or to filter as a translation; kept, unless a text is empty."""
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


def rescore_rows(frame: pl.DataFrame, translator, backtranslate: bool, rules: FilterRules, reverse: str,
                 stats: TranslationStats | None = None, contrasts: int = CONTRAST_SOURCES) -> pl.DataFrame:
    """Stored rows of another reverse mode in, the model signals ``reverse`` adds computed by forced
    decoding only (translations, answers and the stored scores ``reverse`` uses are kept), decided rows
    out. Signals ``reverse`` does not compute (and the margins, with ``contrasts`` 0) are cleared, so the
    result equals a fresh run's."""
    frame = reset_decision(frame)
    if backtranslate:
        frame = compute_model_signals(frame, translator, model_languages=getattr(translator, "languages", None),
                                      reverse=reverse, stats=stats, missing_only=True, contrasts=contrasts)
        unused = [c for c in MODEL_SIGNAL_COLUMNS if c not in REVERSE_SIGNALS[reverse]
                  or (contrasts == 0 and c in MARGIN_SIGNALS)]
        frame = frame.with_columns([pl.lit(None, dtype=frame.schema[c]).alias(c) for c in unused if c in frame.columns])
    return decide_rows(frame, backtranslate=backtranslate, rules=rules)


def reset_decision(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop a previous decision so the filter decides afresh from the stored scores."""
    return frame.with_columns(
        pl.lit(None, dtype=pl.String).alias("status"), pl.lit(None, dtype=pl.String).alias("reject_reason"),
    )


def rows_for_languages(rows: pl.DataFrame, languages: tuple[Language, ...], subset: Iterable[str], seed: int,
                       mode: str, english_share: float | None = None) -> pl.DataFrame:
    """The English rows of a chunk that are assigned to one of ``subset`` (codes), unassigned again.

    Assignment depends only on the example id, seed and the full language list, so processing this
    subset gives exactly the rows a full run gives for those languages.
    """
    subset = set(subset)
    if mode == MODE_ALL:
        return rows
    assigned = assign_languages(rows, languages, seed=seed, mode=mode, english_share=english_share)
    return assigned.filter(pl.col("lang").is_in(sorted(subset))).drop("lang", "lang_nllb")


def merge_language_rows(existing: pl.DataFrame, fresh: pl.DataFrame, subset: Iterable[str]) -> pl.DataFrame:
    """Rows of ``existing`` outside ``subset`` plus the ``fresh`` rows of ``subset``."""
    subset = sorted(set(subset))
    return pl.concat(
        [existing.filter(~pl.col("lang").is_in(subset)), fresh.filter(pl.col("lang").is_in(subset))], how="vertical"
    )

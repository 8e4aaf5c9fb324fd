"""``mblip score``: audit any translated dataset with the quality filter.

Input: JSON Lines of ``{"src": English, "tgt": translation, "lang": NLLB code}`` (a project code such
as ``de`` is accepted too), or Parquet with those columns. Output: JSON Lines in input order, each
input object with every signal added, a boolean ``keep`` and the first failing ``reason`` (null when
kept). A line that is not a JSON object, a missing field or an unknown language gives that row an
``input:...`` reason; it never stops the run. Rows are read, scored and written in bounded chunks.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from pipeline.filters.contrast import resolve_contrasts
from pipeline.filters.quality import SIGNAL_SCHEMA, apply_quality_filter
from pipeline.filters.rules import FilterRules
from pipeline.languages import UnknownLanguageError, get_language

log = logging.getLogger(__name__)

CHUNK_ROWS = 5000


def _as_text(value) -> str | None:
    return value if isinstance(value, str) else None


def _resolve_lang(value) -> str | None:
    """NLLB code for a project or NLLB code; the raw value (flagged later as unknown) otherwise."""
    if not isinstance(value, str):
        return None
    try:
        return get_language(value).nllb
    except UnknownLanguageError:
        return value


def iter_pair_chunks(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[dict]]:
    """Chunks of input records (dicts) from JSON Lines or Parquet; unreadable lines become records
    holding ``_input_error``."""
    path = Path(path)
    if path.suffix == ".parquet":
        reader = pl.scan_parquet(path)
        columns = reader.collect_schema().names()
        missing = [c for c in ("src", "tgt", "lang") if c not in columns]
        if missing:
            raise ValueError(f"{path}: Parquet input needs columns src, tgt, lang; missing {missing}")
        n = reader.select(pl.len()).collect().item()
        for start in range(0, n, chunk_rows):
            yield reader.slice(start, chunk_rows).collect().to_dicts()
        return
    chunk: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    record = {"_input_error": "not_an_object", "_line": line_no}
            except json.JSONDecodeError:
                record = {"_input_error": "invalid_json", "_line": line_no}
            chunk.append(record)
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def score_records(
    records: list[dict], translator=None, rules: FilterRules | None = None,
    model_languages: frozenset[str] | None = None, contrasts: int | None = None,
) -> list[dict]:
    """Each record with every signal, ``keep`` and ``reason`` added, in input order. ``contrasts``: the
    source margins' contrast sources; None = as a run (4 when ``rules`` has a margin rule on, else no margin)."""
    frame = pl.DataFrame(
        {
            "text_en": [_as_text(r.get("src")) for r in records],
            "text_tgt": [_as_text(r.get("tgt")) for r in records],
            "lang_nllb": [_resolve_lang(r.get("lang")) for r in records],
        },
        schema={"text_en": pl.String, "text_tgt": pl.String, "lang_nllb": pl.String},
    )
    # Records that could not be parsed at all are rejected upstream of the filter, with their reason.
    frame = frame.with_columns(
        pl.Series("status", ["rejected" if "_input_error" in r else None for r in records], dtype=pl.String),
        pl.Series(
            "reject_reason",
            [f"input:{r['_input_error']}" if "_input_error" in r else None for r in records],
            dtype=pl.String,
        ),
    )
    rules = rules or FilterRules()
    scored = apply_quality_filter(frame, translator, rules, model_languages=model_languages,
                                  contrasts=resolve_contrasts(contrasts, rules))
    signal_cols = [c for c in SIGNAL_SCHEMA if c in scored.columns]
    out = []
    for record, row in zip(records, scored.select(*signal_cols, "status", "reject_reason").iter_rows(named=True)):
        result = {k: v for k, v in record.items() if not k.startswith("_")}
        for col in signal_cols:
            value = row[col]
            result[col] = None if isinstance(value, float) and math.isnan(value) else value
        result["keep"] = row["status"] == "kept"
        result["reason"] = row["reject_reason"]
        out.append(result)
    return out


def score_pairs_file(
    pairs: str | Path,
    out: str | Path,
    translator=None,
    rules: FilterRules | None = None,
    chunk_rows: int = CHUNK_ROWS,
    model_languages: frozenset[str] | None = None,
    contrasts: int | None = None,
) -> dict[str, int]:
    """Score ``pairs`` into ``out`` (JSON Lines, atomic rename); returns counts per reason ("kept" too)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in iter_pair_chunks(pairs, chunk_rows):
                for row in score_records(chunk, translator, rules, model_languages, contrasts):
                    key = "kept" if row["keep"] else row["reason"]
                    counts[key] = counts.get(key, 0) + 1
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return counts

"""Re-deciding and re-publishing without redoing work: chunk keys, re-decision, affected shards.

A processed chunk's file name carries everything its content depends on, split in two keys:

* the *translation key*: model (id, revision, conversion fingerprint, quantisation), decoding settings,
  languages, assignment seed and mode, whether back-translation runs, and ``PROCESS_VERSION``;
* the *decision key*: the filter thresholds.

plus a digest of the English chunk it came from. A rerun finds finished chunks by name, so a killed run
resumes without recomputing them, and a changed source, model or setting never reuses stale work.
When only the decision key changed, the chunk is re-decided from its stored scores (no translation).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.assign import MODE_ALL, assign_languages
from pipeline.io import sha256_file
from pipeline.languages import Language

log = logging.getLogger(__name__)

# Bump when the chunk transformation changes what it writes for the same inputs and settings.
PROCESS_VERSION = 2  # 2: English rows untranslated and exempt from translation checks, instruction mix
DIGEST_CHARS = 12


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:DIGEST_CHARS]


def translation_key(model: dict, decoding: str, languages: Iterable[str], seed: int, mode: str,
                    backtranslate: bool, prompts: dict | None = None, english_share: float | None = None,
                    reverse: str = "decode") -> str:
    """Digest of everything that changes translations, prompts and scores (not the thresholds).

    ``reverse`` (the filter's reverse check) enters only when it is not "decode", so outputs made
    before the knob existed (all "decode") keep their keys and are found as they are.
    """
    return _digest({
        **({"reverse": reverse} if reverse != "decode" else {}),
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
                 reverse: str = "decode") -> list[str]:
    """Translation keys of stored outputs that hold the same translations as the current settings and
    need only forced-decoding scores to match them (another reverse mode, or no model signals at
    all): a regeneration after a change of ``filter.reverse`` scores, it does not translate."""
    if not backtranslate:
        return []
    candidates = [(True, r) for r in ("score", "decode", "both") if r != reverse and
                  (reverse not in DECODING_MODES or r in DECODING_MODES)]
    if reverse not in DECODING_MODES:
        candidates.append((False, "decode"))
    return [translation_key(model, decoding, languages, seed, mode, bt, prompts, english_share, reverse=r)
            for bt, r in candidates]


def processed_file(work_dir: str | Path, source: str, chunk_path: str | Path, digest: str, tkey: str, dkey: str) -> Path:
    """``processed/{source}/{tkey}/{dkey}/{chunk}-{digest}.parquet``: one folder per decision, so a
    folder holds exactly one version of each chunk (and of its stats sidecar)."""
    stem = Path(chunk_path).stem
    return Path(work_dir) / "processed" / source / tkey / dkey / f"{stem}-{digest}.parquet"


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

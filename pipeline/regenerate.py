"""Re-deciding and re-publishing without redoing work: chunk keys, re-decision, affected shards.

A processed chunk's file name carries everything its content depends on, split in two keys:

* the *translation key*: model (id, revision, conversion fingerprint, quantisation), decoding settings,
  languages, assignment seed and mode, whether back-translation runs, and ``PROCESS_VERSION``;
* the *decision key*: the filter thresholds.

plus a digest of the English chunk it came from. A rerun finds finished chunks by name, so a killed run
resumes without recomputing them, and a changed source, model or setting never reuses stale work.
When only the decision key changed, the chunk is re-decided from its stored scores (no translation).

Publishing goes through a staging folder: the new outputs are written there in full, then only the
files whose bytes differ from what is in the output folder are moved in; the manifest goes last (and
is removed first, so its presence still means "complete").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.assign import MODE_ALL, assign_languages
from pipeline.io import sha256_file, write_json_atomic
from pipeline.languages import Language
from pipeline.output_dir import WORK_DIR

log = logging.getLogger(__name__)

# Bump when the chunk transformation changes what it writes for the same inputs and settings.
PROCESS_VERSION = 2  # 2: English rows untranslated and exempt from translation checks, instruction mix
MANIFEST_NAME = "manifest.json"
# What this tool has published into an output (paths relative to it), kept across a publish that is
# killed after the old manifest was removed: only these files are ever deleted as stale, never a
# file of the user's that happens to sit in a shard folder.
OWNED_FILES = f"{WORK_DIR}/published-files.json"
DIGEST_CHARS = 12


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:DIGEST_CHARS]


def translation_key(model: dict, decoding: str, languages: Iterable[str], seed: int, mode: str,
                    backtranslate: bool, prompts: dict | None = None, english_share: float | None = None) -> str:
    """Digest of everything that changes translations, prompts and scores (not the thresholds)."""
    return _digest({
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
    redecide_from: str | None = None  # processed file with the same translation key, other decision


ACTION_DONE, ACTION_REDECIDE, ACTION_PROCESS = "done", "redecide", "process"


def processed_file(work_dir: str | Path, source: str, chunk_path: str | Path, digest: str, tkey: str, dkey: str) -> Path:
    """``processed/{source}/{tkey}/{dkey}/{chunk}-{digest}.parquet``: one folder per decision, so a
    folder holds exactly one version of each chunk (and of its stats sidecar)."""
    stem = Path(chunk_path).stem
    return Path(work_dir) / "processed" / source / tkey / dkey / f"{stem}-{digest}.parquet"


def plan_chunk(work_dir: str | Path, source: str, chunk_path: str | Path, tkey: str, dkey: str,
               force: bool = False) -> ChunkPlan:
    """Decide what a chunk needs: nothing, a re-decision from stored scores, or processing."""
    digest = chunk_digest(chunk_path)
    out = processed_file(work_dir, source, chunk_path, digest, tkey, dkey)
    if force:
        return ChunkPlan(str(chunk_path), str(out), ACTION_PROCESS)
    if out.exists():
        return ChunkPlan(str(chunk_path), str(out), ACTION_DONE)
    siblings = sorted(p for p in out.parent.parent.glob(f"*/{out.name}") if p != out)
    if siblings:
        return ChunkPlan(str(chunk_path), str(out), ACTION_REDECIDE, str(siblings[0]))
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


# -- publishing -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublishReport:
    replaced: tuple[str, ...]  # files written (new or changed), relative paths
    unchanged: tuple[str, ...]  # files already identical in the output folder
    removed: tuple[str, ...]  # stale files removed from the output folder


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def select_changed(staging: str | Path, out_dir: str | Path) -> tuple[list[str], list[str], list[str]]:
    """Compare a staged output with the published one: (changed or new, unchanged, stale) paths.

    Stale means a file this tool published earlier (listed by the published manifest or by the
    ownership record, see ``OWNED_FILES``) that the staged output no longer has. The manifest always
    counts as changed (it carries the creation time).
    """
    staging, out_dir = Path(staging), Path(out_dir)
    staged = _files(staging)
    changed, same = [], []
    for rel, path in staged.items():
        target = out_dir / rel
        if rel != MANIFEST_NAME and target.is_file() and target.stat().st_size == path.stat().st_size \
                and sha256_file(target) == sha256_file(path):
            same.append(rel)
        else:
            changed.append(rel)
    published = owned_files(out_dir)
    stale = sorted(rel for rel in published if rel not in staged and (out_dir / rel).is_file())
    return changed, same, stale


def owned_files(out_dir: str | Path) -> set[str]:
    """Paths this tool published into ``out_dir``: its manifest's files plus the ownership record.
    Entries that are malformed or leave the output folder are ignored (never deleted)."""
    from pipeline.io import outside_output

    out_dir = Path(out_dir)
    owned: set[str] = set()
    for source in (out_dir / MANIFEST_NAME, out_dir / OWNED_FILES):
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):  # a manifest
            entries = [e for key in ("files", "meta_files") for e in (data.get(key) or [])
                       if isinstance(data.get(key), list)]
            paths = [e.get("path") for e in entries if isinstance(e, dict)]
        else:  # the ownership record: a list of paths
            paths = data if isinstance(data, list) else []
        owned |= {p for p in paths if isinstance(p, str) and p and outside_output(out_dir, p) is None}
    return owned


def publish(staging: str | Path, out_dir: str | Path) -> PublishReport:
    """Move the changed files of ``staging`` into ``out_dir``; manifest removed first, written last."""
    staging, out_dir = Path(staging), Path(out_dir)
    changed, same, stale = select_changed(staging, out_dir)
    manifest = out_dir / MANIFEST_NAME
    # Before anything changes: what is owned now and what will be, so a kill below loses no ownership.
    staged_paths = sorted(set(changed) | set(same))
    write_json_atomic(sorted(owned_files(out_dir) | set(staged_paths)), out_dir / OWNED_FILES)
    if changed != [MANIFEST_NAME] or stale:
        manifest.unlink(missing_ok=True)  # the output is incomplete until the new manifest lands
    for rel in changed:
        if rel == MANIFEST_NAME:
            continue
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, out_dir / rel)
    for rel in stale:
        (out_dir / rel).unlink()
    if MANIFEST_NAME in changed:
        os.replace(staging / MANIFEST_NAME, manifest)
    write_json_atomic(staged_paths, out_dir / OWNED_FILES)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("published %s: %d files written, %d unchanged, %d stale removed", out_dir, len(changed), len(same), len(stale))
    return PublishReport(tuple(changed), tuple(same), tuple(stale))

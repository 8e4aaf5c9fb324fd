"""Final outputs: Parquet shards (zstd) for kept, rejected and quarantined rows, the card, then the manifest.

Layout under the output root::

    data/{lang}/part-00000.parquet     kept rows, one folder (one `datasets` config) per target language
    rejects/{lang}/part-00000.parquet  rejected rows with every score and the reason, per language
    quarantine/part-00000.parquet      records the readers could not turn into rows
    plots/*.png                        figures the card shows
    stats.json                         every counter the card shows
    README.md                          dataset card with Hugging Face metadata (see pipeline/card.py)
    manifest.json                      every file with rows, bytes and sha256 -- written last

The manifest's presence means the output is complete. Rows are sorted by example_id within a
language, so the same inputs and seed give identical shards. A split with no rows gets no shard: an empty Parquet file
would be a `datasets` split that "corresponds to no data".

Memory does not grow with the dataset: a language's rows are never all in memory. They are sorted in
buckets of at most about ``sort_bucket_rows`` rows (ranges of the example_id, a hex hash, so buckets are
even), each bucket spilled sorted, and shards are streamed from the bucket files in order. Concatenated
buckets are the language sorted as a whole, and polars' streaming Parquet sink writes the same bytes
as writing the whole frame, so the bucket count never shows in the output.

Resume: the inputs (processed chunks and quarantine chunks, by checksum) and the shard layout give a
fingerprint. A rerun with the same fingerprint reuses every shard the previous manifest (or the journal
of an interrupted run) certifies and whose bytes still match its sha256; anything else is rewritten.
Before the first file is replaced, the old manifest is retired, so a run killed half-way leaves no
manifest certifying a file it did not finish; ``.manifest.partial.json`` keeps what was finished.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from pipeline.io import (
    PARQUET_COMPRESSION, sha256_file, sink_parquet_atomic, write_bytes_atomic, write_json_atomic, write_text_atomic,
)
from pipeline.languages import get_language
from pipeline.schema import QUARANTINE_SCHEMA, ROW_SCHEMA, SCHEMA_VERSION, STATUS_KEPT, STATUS_REJECTED

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
JOURNAL = ".manifest.partial.json"
SPILL_DIR = ".spill"  # rows regrouped by language while shards are written; removed at the end
SORTED_DIR = "_sorted"  # under SPILL_DIR: one group's sorted buckets, removed once its shards are written
# Rows sorted in memory at once (one bucket). Memory vs passes: each bucket is one filtered scan of the
# group's spill files, so a group of N rows is read about N / SORT_BUCKET_ROWS times.
SORT_BUCKET_ROWS = 20_000
ID_PREFIX_CHARS = 4  # example_id prefix the bucket ranges split (16**4 values: even buckets up to 65536)
STATS = "stats.json"
SPLIT_KEPT, SPLIT_REJECTED, SPLIT_QUARANTINE = "kept", "rejected", "quarantine"
DATA_DIR, REJECTS_DIR, QUARANTINE_DIR = "data", "rejects", "quarantine"
SHARD_DIRS = (DATA_DIR, REJECTS_DIR, QUARANTINE_DIR)
# Quantiles kept per score column and language (enough for box plots; see pipeline/plots.py).
SCORE_QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}


class InvariantError(RuntimeError):
    """Input records != kept + rejected + quarantined for some source."""


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


@dataclass(frozen=True)
class ShardLayout:
    """How a sorted frame is cut into files.

    ``shard_rows``: at most this many rows per file. ``shard_bytes``: target in-memory (Arrow,
    uncompressed) bytes per file, turned into a row count from the frame's mean row size; zstd files
    come out several times smaller. 0 = off (rows only). ``row_group_rows``: Parquet row-group size,
    the unit readers fetch and skip by statistics.
    """

    shard_rows: int = 100_000
    shard_bytes: int = 0
    row_group_rows: int = 10_000

    def rows_per_shard(self, frame: pl.DataFrame) -> int:
        return self.rows_for(frame.height, frame.estimated_size() if self.shard_bytes else 0)

    def rows_for(self, height: int, estimated_bytes: int) -> int:
        """Rows per file for ``height`` rows taking ``estimated_bytes`` in memory (Arrow) all together."""
        rows = self.shard_rows
        if self.shard_bytes and height:
            row_bytes = max(1.0, estimated_bytes / height)
            rows = min(rows, max(1, int(self.shard_bytes // row_bytes)))
        return rows


@dataclass(frozen=True)
class SortedRows:
    """A group's rows in their final order, left on disk: a lazy scan, its row count and its in-memory
    (Arrow) size, which ``shard_bytes`` turns into rows per file."""

    frame: pl.LazyFrame
    height: int
    estimated_bytes: int


def inputs_fingerprint(paths: Iterable[str | Path], layout: ShardLayout) -> str:
    """What the shards' bytes depend on: input contents, schema, layout and compression."""
    h = hashlib.sha256()
    h.update(json.dumps({"schema": SCHEMA_VERSION, "layout": asdict(layout), "compression": PARQUET_COMPRESSION},
                        sort_keys=True).encode())
    for path in sorted(Path(p) for p in paths):
        h.update(f"{path.parent.name}/{path.name}\x1f{sha256_file(path)}\n".encode())
    return h.hexdigest()[:32]


def file_entry(out_dir: Path, rel: str, split: str, lang: str | None, rows: int | None) -> dict:
    path = out_dir / rel
    return {"path": rel, "split": split, "lang": lang, "rows": rows, "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}


def is_intact(out_dir: Path, entry: dict) -> bool:
    """The file an entry certifies exists with the recorded size, checksum and (Parquet) row count.

    The row count is read from the file, not trusted from the entry: an entry edited by hand, or
    written by a run that raced another, is not copied forward."""
    import pyarrow.parquet as pq

    path = out_dir / entry["path"]
    if not (path.is_file() and path.stat().st_size == entry.get("bytes") and sha256_file(path) == entry.get("sha256")):
        return False
    if path.suffix == ".parquet" and "rows" in entry:
        try:
            return pq.read_metadata(path).num_rows == entry["rows"]
        except Exception:  # noqa: BLE001 - an unreadable file is not intact
            return False
    return True


class LanguageSpill:
    """Rows regrouped by (status, language) in one pass over the processed chunks, on first use, then
    sorted one language at a time in bounded buckets.

    Reading every chunk once per language would cost 95 full scans; here each chunk is read once and
    split into ``{status}/{lang}/{chunk}.parquet`` files, so memory holds one chunk. ``sorted_rows``
    then sorts a language bucket by bucket (``sort_bucket_rows``), so memory holds one bucket.
    """

    def __init__(self, processed: list[str], spill_dir: Path, sort_bucket_rows: int = SORT_BUCKET_ROWS):
        if sort_bucket_rows < 1:
            raise ValueError(f"sort_bucket_rows must be >= 1 (rows sorted in memory at once), got {sort_bucket_rows}")
        self.processed = processed
        self.dir = spill_dir
        self.sort_bucket_rows = sort_bucket_rows
        self._counts: dict[tuple[str, str], int] | None = None

    def _spill(self) -> dict[tuple[str, str], int]:
        if self._counts is None:
            shutil.rmtree(self.dir, ignore_errors=True)
            counts: dict[tuple[str, str], int] = {}
            for i, path in enumerate(self.processed):
                for (st, lg), part in pl.read_parquet(path).partition_by(["status", "lang"], as_dict=True).items():
                    if st in (STATUS_KEPT, STATUS_REJECTED) and lg is not None:
                        # scratch files: a killed run leaves them to the next run, which starts over
                        target = self.dir / st / lg / f"{i:06d}.parquet"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        part.write_parquet(target, compression="lz4")
                        counts[(st, lg)] = counts.get((st, lg), 0) + part.height
            self._counts = counts
        return self._counts

    def sorted_rows(self, status: str, lang: str, with_size: bool = False) -> SortedRows:
        """The group's rows sorted by example_id, as sorted bucket files read in order.

        ``with_size``: also measure the in-memory size (one more pass, a file at a time), summed over
        the spill files so that it does not depend on the bucket count.
        """
        height = self._spill().get((status, lang), 0)
        files = sorted((self.dir / status / lang).glob("*.parquet"))
        if not files:
            return SortedRows(pl.LazyFrame(schema=ROW_SCHEMA), 0, 0)
        size = sum(pl.read_parquet(f).estimated_size() for f in files) if with_size else 0
        out = self.dir / SORTED_DIR / status / lang
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        buckets = []
        for i, keep in enumerate(id_ranges(-(-height // self.sort_bucket_rows))):
            bucket = pl.scan_parquet(files).filter(keep).collect(engine="streaming").sort("example_id")
            if bucket.height:
                buckets.append(out / f"{i:05d}.parquet")
                bucket.write_parquet(buckets[-1], compression="lz4")
            del bucket
        return SortedRows(pl.scan_parquet(buckets), height, size)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def id_ranges(n: int) -> list[pl.Expr]:
    """``n`` filters that split example_ids into consecutive ranges, in sort order.

    Bounds are ``ID_PREFIX_CHARS``-digit hex prefixes (ids are hex hashes, so ranges hold even shares);
    the first range is open below (with nulls, which sort first) and the last open above, so any string
    falls in exactly one range and the ranges concatenated are the whole sort order.
    """
    n = max(1, min(n, 16**ID_PREFIX_CHARS))
    bounds = [f"{i * 16**ID_PREFIX_CHARS // n:0{ID_PREFIX_CHARS}x}" for i in range(1, n)]
    col = pl.col("example_id")
    ranges = []
    for i in range(n):
        keep = col.is_null() if i == 0 else col >= bounds[i - 1]
        if i < n - 1:
            keep = (keep | (col < bounds[i])) if i == 0 else (keep & (col < bounds[i]))
        ranges.append(pl.lit(True) if n == 1 else keep)
    return ranges


class ShardStore:
    """Writes shard groups (one folder's files) with resume, and keeps the manifest honest.

    A group is certified when a previous manifest or the journal of an interrupted run lists it as
    complete under the same inputs fingerprint; it is reused when every file still matches its sha256.
    """

    def __init__(self, out_dir: Path, fingerprint: str, layout: ShardLayout, reuse_from: Path | None = None):
        self.out_dir = out_dir
        self.fingerprint = fingerprint
        self.layout = layout
        self.files: list[dict] = []
        self.reused = self.written = 0
        self._groups: dict[str, list[dict]] = {}  # group key -> certified entries (complete groups)
        self._certified: dict[str, dict] = {}  # path -> certified entry (also from incomplete groups)
        self._retired = False
        previous = _read_json(out_dir / MANIFEST)
        # Files an earlier run wrote here (whatever its inputs): the only ones ``remove_stale`` deletes.
        self._owned = {e.get("path") for key in ("files", "meta_files")
                       for e in ((previous or {}).get(key) or []) if isinstance(e, dict)}
        if previous and previous.get("inputs_fingerprint") == fingerprint:
            for entry in previous.get("files", []):
                self._groups.setdefault(_group_key(entry["split"], entry["lang"]), []).append(entry)
        journal = _read_json(out_dir / JOURNAL)
        self._owned |= set((journal or {}).get("owned") or []) | set((journal or {}).get("files") or {})
        if journal and journal.get("inputs_fingerprint") == fingerprint:
            self._groups.update(journal.get("groups", {}))
            self._certified.update(journal.get("files", {}))
        for entries in self._groups.values():
            self._certified.update({e["path"]: e for e in entries})
        # Groups a published output certifies under the same fingerprint: linked in, not recomputed.
        self._external: dict[str, list[dict]] = {}
        self._reuse_from = Path(reuse_from) if reuse_from else None
        published = _read_json(self._reuse_from / MANIFEST) if self._reuse_from else None
        if published and published.get("inputs_fingerprint") == fingerprint:
            for entry in published.get("files", []):
                self._external.setdefault(_group_key(entry["split"], entry["lang"]), []).append(entry)
        self._journal = {"inputs_fingerprint": fingerprint, "groups": dict(self._groups), "files": dict(self._certified),
                         "owned": sorted(p for p in self._owned if isinstance(p, str))}

    def retire_manifest(self) -> None:
        """Before the first file changes: remember what is certified, then drop the manifest."""
        if self._retired:
            return
        self._save_journal()
        (self.out_dir / MANIFEST).unlink(missing_ok=True)
        self._retired = True

    def write_group(self, split: str, lang: str | None, rel_dir: str,
                    build: Callable[[bool], SortedRows]) -> None:
        """Shard ``build(with_size)`` (sorted rows) into ``rel_dir``, unless certified shards are still intact.

        ``with_size``: whether ``shard_bytes`` needs the rows' in-memory size.
        """
        key = _group_key(split, lang)
        certified = self._groups.get(key)
        if certified is not None and all(is_intact(self.out_dir, e) for e in certified):
            self.files.extend(certified)
            self.reused += len(certified)
            return
        external = self._external.get(key)
        if external is not None and all(is_intact(self._reuse_from, e) for e in external):
            self.retire_manifest()
            for entry in external:
                _link_or_copy(self._reuse_from / entry["path"], self.out_dir / entry["path"])
                self._journal["files"][entry["path"]] = entry
            self._journal["groups"][key] = external
            self._save_journal()
            self.files.extend(external)
            self.reused += len(external)
            return
        rows = build(bool(self.layout.shard_bytes))
        entries = []
        step = self.layout.rows_for(rows.height, rows.estimated_bytes)
        for i in range(-(-rows.height // step)):
            height = min(step, rows.height - i * step)
            rel = f"{rel_dir}/{shard_name(i)}"
            old = self._certified.get(rel)
            if old is not None and old["rows"] == height and is_intact(self.out_dir, old):
                entry = old
                self.reused += 1
            else:
                self.retire_manifest()
                sink_parquet_atomic(rows.frame.slice(i * step, step), self.out_dir / rel, self.layout.row_group_rows)
                entry = file_entry(self.out_dir, rel, split, lang, height)
                self.written += 1
            entries.append(entry)
            self._journal["files"][rel] = entry
            self._save_journal()
        self._journal["groups"][key] = entries
        self._save_journal()
        self.files.extend(entries)

    def write_meta(self, rel: str, content: str | bytes) -> dict:
        """A non-shard file (stats, card, plot), rewritten only when its bytes change."""
        path = self.out_dir / rel
        data = content.encode("utf-8") if isinstance(content, str) else content
        if not (path.is_file() and path.read_bytes() == data):
            self.retire_manifest()
            if isinstance(content, str):
                write_text_atomic(content, path)
            else:
                write_bytes_atomic(data, path)
        return {"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def remove_stale(self, keep: set[str]) -> None:
        """Shards or plots of an earlier run that this one did not produce would be mistaken for data;
        temporary files of a killed write are removed too. Only files an earlier run of this tool
        wrote here (its manifest or journal lists them) are ever deleted."""
        for sub in (*SHARD_DIRS, "plots"):
            root = self.out_dir / sub
            if not root.exists():
                continue
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(self.out_dir).as_posix()
                ours = rel in self._owned or ".tmp-" in path.name
                if path.is_file() and rel not in keep and ours:
                    self.retire_manifest()
                    path.unlink()
            for path in sorted(root.rglob("*"), reverse=True):
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        for path in self.out_dir.glob(".*.tmp-*"):
            path.unlink()

    def finish(self) -> None:
        (self.out_dir / JOURNAL).unlink(missing_ok=True)

    def _save_journal(self) -> None:
        write_json_atomic(self._journal, self.out_dir / JOURNAL)


def write_outputs(
    out_dir: str | Path,
    processed: Iterable[str | Path],
    quarantine: Iterable[str | Path],
    ingest_counts: dict[str, dict[str, int]],
    fan_out: int,
    shard_rows: int,
    row_group_rows: int,
    metadata: dict,
    shard_bytes: int = 0,
    card: bool = True,
    reuse_from: str | Path | None = None,
    sort_bucket_rows: int = SORT_BUCKET_ROWS,
) -> dict:
    """Shard everything, check the row invariant, write stats.json, the card and (last) manifest.json.

    ``metadata`` goes into the manifest as is; the card reads ``model``, ``sources`` (name -> type),
    ``settings`` (translation / filter / assignment values) and ``pretty_name`` from it when present.
    ``reuse_from``: a published output (e.g. when ``out_dir`` is a staging folder); shards its manifest
    certifies under the same inputs fingerprint are hard-linked in instead of recomputed.
    ``sort_bucket_rows``: rows sorted in memory at once (see ``SORT_BUCKET_ROWS``); the output does not
    depend on it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    processed = sorted(str(p) for p in processed)
    quarantine = sorted(str(p) for p in quarantine)
    layout = ShardLayout(shard_rows, shard_bytes, row_group_rows)
    store = ShardStore(out_dir, inputs_fingerprint(processed + quarantine, layout), layout, reuse_from)
    rows = pl.scan_parquet(processed) if processed else pl.LazyFrame(schema=ROW_SCHEMA)
    bad = pl.scan_parquet(quarantine) if quarantine else pl.LazyFrame(schema=QUARANTINE_SCHEMA)
    spill = LanguageSpill(processed, out_dir / SPILL_DIR, sort_bucket_rows)
    groups = rows.select("status", "lang").unique().collect()
    for status, split, folder in ((STATUS_KEPT, SPLIT_KEPT, DATA_DIR), (STATUS_REJECTED, SPLIT_REJECTED, REJECTS_DIR)):
        for lang in sorted(groups.filter(pl.col("status") == status)["lang"].to_list()):
            store.write_group(split, lang, f"{folder}/{lang}",
                              lambda with_size, status=status, lang=lang: spill.sorted_rows(status, lang, with_size))
            shutil.rmtree(spill.dir / SORTED_DIR, ignore_errors=True)
    # Quarantined records are few (the readers' failures); sorted whole in polars' streaming engine.
    store.write_group(SPLIT_QUARANTINE, None, QUARANTINE_DIR,
                      lambda with_size: sorted_quarantine(bad, out_dir / SPILL_DIR / SORTED_DIR, with_size))

    stats = compute_stats(rows, bad, ingest_counts, fan_out, metadata.get("target_shares"))
    stats["processing"] = sum_sidecars(processed)
    stats["output"] = summarise_files(store.files)
    meta_files = [store.write_meta(STATS, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")]
    if card:
        from pipeline.card import render_card_files

        for rel, content in render_card_files(stats, store.files, metadata).items():
            meta_files.append(store.write_meta(rel, content))
    spill.remove()
    store.remove_stale({f["path"] for f in store.files} | {f["path"] for f in meta_files})
    log.info("shards: %d written, %d reused (certified and intact)", store.written, store.reused)

    previous = _read_json(out_dir / MANIFEST)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created": previous["created"] if previous else _now(),
        **metadata,
        "inputs_fingerprint": store.fingerprint,
        "layout": asdict(layout),
        "totals": stats["totals"],
        "files": store.files,
        "meta_files": meta_files,
    }
    if manifest != previous:
        manifest["created"] = _now()
        store.retire_manifest()
        write_json_atomic(manifest, out_dir / MANIFEST)
    store.finish()
    return manifest


def sorted_quarantine(bad: pl.LazyFrame, spill_dir: Path, with_size: bool) -> SortedRows:
    spill_dir.mkdir(parents=True, exist_ok=True)
    path = spill_dir / "quarantine.parquet"
    bad.sort(["source", "source_file", "record_index"]).sink_parquet(path, compression="lz4")
    height = pl.scan_parquet(path).select(pl.len()).collect().item()
    return SortedRows(pl.scan_parquet(path), height, pl.read_parquet(path).estimated_size() if with_size else 0)


def compute_stats(rows: pl.LazyFrame, bad: pl.LazyFrame | pl.DataFrame, ingest_counts: dict[str, dict[str, int]],
                  fan_out: int, target_shares: dict[str, float] | None = None) -> dict:
    """Every counter the card shows: per source, language, task and reject reason, plus score summaries.

    ``target_shares``: the run's assignment weights per language (default: mC4 shares renormalised
    over the languages present)."""
    bad = bad.lazy()
    kept, rejected = pl.col("status") == STATUS_KEPT, pl.col("status") == STATUS_REJECTED
    per_source = rows.group_by("source").agg(kept.sum().alias("kept"), rejected.sum().alias("rejected")).collect()
    out_counts = {r["source"]: r for r in per_source.to_dicts()}
    q_by_source = {r["source"]: r["len"] for r in bad.group_by("source").len().collect().to_dicts()}
    sources = {}
    for source, counts in sorted(ingest_counts.items()):
        n_kept = int(out_counts.get(source, {}).get("kept", 0))
        n_rejected = int(out_counts.get(source, {}).get("rejected", 0))
        quarantined = int(q_by_source.get(source, 0))
        records = counts["rows"] + counts["quarantined"]
        if quarantined != counts["quarantined"] or n_kept + n_rejected != counts["rows"] * fan_out:
            raise InvariantError(
                f"source {source}: {records} input records but kept {n_kept} + rejected {n_rejected} "
                f"(fan-out {fan_out}) + quarantined {quarantined} do not add up"
            )
        sources[source] = {"records": records, "rows": counts["rows"], "kept": n_kept, "rejected": n_rejected,
                           "quarantined": quarantined,
                           **{k: v for k, v in counts.items() if k not in ("rows", "quarantined")}}

    schema = rows.collect_schema()
    score_cols = [c for c, t in schema.items() if c.startswith("score_") and t.is_numeric()]
    # Rows whose source fixed the language (``preset_lang``) were not assigned by the run: the shares
    # compared with the assignment's targets count only the rows the run assigned.
    by_run = pl.col("preset_lang").is_null() if "preset_lang" in schema else pl.lit(True)
    per_lang = rows.group_by("lang").agg(
        pl.len().alias("assigned"), kept.sum().alias("kept"), rejected.sum().alias("rejected"),
        by_run.sum().alias("by_run"), *[pl.col(c).mean().alias(c) for c in score_cols],
    ).sort("lang").collect()
    reasons = rows.filter(rejected).group_by(["lang", "reject_reason"]).len().sort(["lang", "reject_reason"]).collect()
    reasons_by_lang: dict[str, dict[str, int]] = {}
    for r in reasons.to_dicts():
        reasons_by_lang.setdefault(r["lang"], {})[r["reject_reason"] or "unknown"] = r["len"]

    total_by_run = int(per_lang["by_run"].sum()) if per_lang.height else 0
    run_langs = [get_language(code) for code in per_lang["lang"].to_list()]
    mc4_total = sum(lang.mc4_share_pct for lang in run_langs) or 1.0
    languages = {}
    for r, lang in zip(per_lang.to_dicts(), run_langs):
        languages[lang.code] = {
            "name": lang.name, "nllb": lang.nllb,
            "assigned": r["assigned"], "kept": r["kept"], "rejected": r["rejected"],
            "keep_rate": r["kept"] / r["assigned"] if r["assigned"] else 0.0,
            "assigned_share": r["by_run"] / total_by_run if total_by_run else 0.0,
            "preset": r["assigned"] - r["by_run"],  # rows in this language because their source fixed it
            "mc4_target_share": (target_shares or {}).get(lang.code, lang.mc4_share_pct / mc4_total),
            "reject_reasons": reasons_by_lang.get(lang.code, {}),
            "mean_scores": {c: r[c] for c in score_cols},
            # kept for readers of the first stats format (pipeline/summary.py)
            "mean_bt_chrf": r.get("score_bt_chrf"),
        }
    per_task = rows.group_by("task").agg(pl.len().alias("assigned"), kept.sum().alias("kept"),
                                         rejected.sum().alias("rejected")).sort("task").collect()
    per_task_lang = rows.group_by(["task", "lang"]).agg(kept.sum().alias("kept"), rejected.sum().alias("rejected"))
    task_languages: dict[str, dict[str, dict]] = {}
    for r in per_task_lang.sort(["task", "lang"]).collect().to_dicts():
        task_languages.setdefault(r["task"], {})[r["lang"]] = {"kept": r["kept"], "rejected": r["rejected"]}
    mix_rows = rows.filter(pl.col("reject_reason").is_in(["mix_share", "mix_cap"])).group_by(["task", "reject_reason"])
    mix_reasons: dict[str, dict[str, int]] = {}
    for r in mix_rows.len().sort(["task", "reject_reason"]).collect().to_dicts():
        mix_reasons.setdefault(r["task"], {})[r["reject_reason"]] = r["len"]
    quarantine_reasons = bad.group_by(["source", "field", "reason"]).len().sort(["source", "field", "reason"]).collect()
    return {
        "schema_version": SCHEMA_VERSION,
        "totals": {
            "records": sum(s["records"] for s in sources.values()),
            "kept": sum(s["kept"] for s in sources.values()),
            "rejected": sum(s["rejected"] for s in sources.values()),
            "quarantined": sum(s["quarantined"] for s in sources.values()),
        },
        "sources": sources,
        "tasks": {r["task"]: {k: v for k, v in r.items() if k != "task"} for r in per_task.to_dicts()},
        "task_languages": task_languages,
        "mix_reasons": mix_reasons,
        "languages": languages,
        "reject_reasons": [{"lang": r["lang"], "reason": r["reject_reason"], "rows": r["len"]} for r in reasons.to_dicts()],
        "quarantine_reasons": [
            {"source": r["source"], "field": r["field"], "reason": r["reason"], "rows": r["len"]}
            for r in quarantine_reasons.to_dicts()
        ],
        "scores": score_summaries(rows, score_cols),
    }


def score_summaries(rows: pl.LazyFrame, score_cols: list[str]) -> dict[str, dict[str, dict]]:
    """Per score column and language: count, mean, min, quantiles, max (nulls = not applicable, skipped).

    Aggregated in polars so the plots never need the rows themselves; one column at a time, because
    exact quantiles hold the column's values: memory is one score column (and the language), not every one.
    """
    out: dict[str, dict[str, dict]] = {}
    keys = ("count", "mean", "min", *SCORE_QUANTILES, "max")
    for c in score_cols:
        col = pl.col(c).cast(pl.Float64)
        aggs = [col.count().alias("count"), col.mean().alias("mean"), col.min().alias("min"), col.max().alias("max")]
        aggs += [col.quantile(q, interpolation="linear").alias(name) for name, q in SCORE_QUANTILES.items()]
        for r in rows.select("lang", c).group_by("lang").agg(aggs).sort("lang").collect().to_dicts():
            if r["count"]:
                out.setdefault(c, {})[r["lang"]] = {k: r[k] for k in keys}
    return out


def sum_sidecars(processed: Iterable[str | Path]) -> dict:
    """Run totals of the per-chunk stats sidecars (``chunk-….stats.json`` next to each processed chunk).

    ``translation`` counters are summed and the ratios (dedup factor, cache hit rate) recomputed from
    the sums; ``templates`` (the per-language template set, the same in every chunk) takes the max per
    counter; any other numeric field is summed. Chunks without a sidecar are counted as missing.
    """
    from pipeline.translate import TranslationStats, stats_path

    total, templates, texts, other = TranslationStats(), {}, {}, {}
    found = missing = 0
    for chunk in processed:
        data = _read_json(stats_path(chunk))
        if not isinstance(data, dict):
            missing += 1
            continue
        found += 1
        total.add(TranslationStats.from_dict(data.get("translation") or {}))
        for lang, counts in (data.get("templates") or {}).items():
            slot = templates.setdefault(lang, {})
            for key, value in counts.items():
                slot[key] = max(slot.get(key, 0), value)
        for lang, kept in (data.get("template_texts") or {}).items():
            texts.setdefault(lang, kept)  # the language's template set: the same in every chunk
        skip = ("translation", "templates", "template_texts")
        for key, value in _flatten({k: v for k, v in data.items() if k not in skip}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                other[key] = other.get(key, 0) + value
    if not found:
        return {}
    return {"sidecars": found, "chunks_without_sidecar": missing, "translation": total.as_dict(),
            "templates": dict(sorted(templates.items())), "template_texts": dict(sorted(texts.items())),
            **dict(sorted(other.items()))}


def summarise_files(files: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for f in files:
        s = out.setdefault(f["split"], {"files": 0, "rows": 0, "bytes": 0})
        s["files"] += 1
        s["rows"] += f["rows"] or 0
        s["bytes"] += f["bytes"]
    return out


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _group_key(split: str, lang: str | None) -> str:
    return f"{split}/{lang or '-'}"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src``'s bytes at ``dst`` atomically: a hard link where possible, else a copy."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

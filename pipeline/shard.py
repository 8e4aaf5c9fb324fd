"""Final outputs: Parquet shards (zstd) for kept, rejected and quarantined rows, then the manifest.

Layout under the output root::

    data/{lang}/part-00000.parquet     kept rows, one folder per target language
    rejects/part-00000.parquet         rejected rows with every score and the reason
    quarantine/part-00000.parquet      records the readers could not turn into rows
    stats.json                         counters per source, language and reason
    manifest.json                      every file with rows, bytes and sha256 -- written last

The manifest's presence means the output is complete. Rows are sorted (language, example_id), so the
same inputs and seed give identical shards.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from pipeline.io import sha256_file, write_json_atomic, write_parquet_atomic
from pipeline.schema import QUARANTINE_SCHEMA, ROW_SCHEMA, SCHEMA_VERSION, STATUS_KEPT, STATUS_REJECTED

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STATS = "stats.json"
SPLIT_KEPT, SPLIT_REJECTED, SPLIT_QUARANTINE = "kept", "rejected", "quarantine"


class InvariantError(RuntimeError):
    """Input records != kept + rejected + quarantined for some source."""


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class ShardWriter:
    """Splits a sorted frame into fixed-size shards in one folder and records them for the manifest."""

    def __init__(self, out_dir: Path, shard_rows: int, row_group_rows: int):
        self.out_dir = out_dir
        self.shard_rows = shard_rows
        self.row_group_rows = row_group_rows
        self.files: list[dict] = []

    def write(self, frame: pl.DataFrame, rel_dir: str, split: str, lang: str | None) -> None:
        n_shards = max(1, -(-frame.height // self.shard_rows))
        for i in range(n_shards):
            part = frame.slice(i * self.shard_rows, self.shard_rows)
            rel = f"{rel_dir}/{shard_name(i)}"
            path = write_parquet_atomic(part, self.out_dir / rel, self.row_group_rows)
            self.files.append(
                {"path": rel, "split": split, "lang": lang, "rows": part.height,
                 "bytes": path.stat().st_size, "sha256": sha256_file(path)}
            )


def write_outputs(
    out_dir: str | Path,
    processed: Iterable[str | Path],
    quarantine: Iterable[str | Path],
    ingest_counts: dict[str, dict[str, int]],
    fan_out: int,
    shard_rows: int,
    row_group_rows: int,
    metadata: dict,
) -> dict:
    """Shard everything, check the row invariant, write stats.json and (last) manifest.json."""
    out_dir = Path(out_dir)
    processed = [str(p) for p in processed]
    quarantine = [str(p) for p in quarantine]
    rows = pl.scan_parquet(processed) if processed else pl.LazyFrame(schema=ROW_SCHEMA)
    writer = ShardWriter(out_dir, shard_rows, row_group_rows)

    langs = rows.filter(pl.col("status") == STATUS_KEPT).select(pl.col("lang").unique()).collect()["lang"].to_list()
    for lang in sorted(langs):
        kept = rows.filter((pl.col("status") == STATUS_KEPT) & (pl.col("lang") == lang)).sort("example_id").collect()
        writer.write(kept, f"data/{lang}", SPLIT_KEPT, lang)
    rejected = rows.filter(pl.col("status") == STATUS_REJECTED).sort(["lang", "example_id"]).collect()
    writer.write(rejected, "rejects", SPLIT_REJECTED, None)
    bad = (
        pl.scan_parquet(quarantine).sort(["source", "source_file", "record_index"]).collect()
        if quarantine else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    )
    writer.write(bad, "quarantine", SPLIT_QUARANTINE, None)

    stats = compute_stats(rows, bad, ingest_counts, fan_out)
    write_json_atomic(stats, out_dir / STATS)
    _remove_stale(out_dir, {f["path"] for f in writer.files})
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **metadata,
        "totals": stats["totals"],
        "files": writer.files,
    }
    write_json_atomic(manifest, out_dir / MANIFEST)
    return manifest


def compute_stats(rows: pl.LazyFrame, bad: pl.DataFrame, ingest_counts: dict[str, dict[str, int]], fan_out: int) -> dict:
    per_source = rows.group_by("source").agg(
        (pl.col("status") == STATUS_KEPT).sum().alias("kept"),
        (pl.col("status") == STATUS_REJECTED).sum().alias("rejected"),
    ).collect()
    out_counts = {r["source"]: r for r in per_source.to_dicts()}
    q_counts = bad.group_by("source").len().to_dicts() if bad.height else []
    q_by_source = {r["source"]: r["len"] for r in q_counts}
    sources = {}
    for source, counts in sorted(ingest_counts.items()):
        kept = int(out_counts.get(source, {}).get("kept", 0))
        rejected = int(out_counts.get(source, {}).get("rejected", 0))
        quarantined = int(q_by_source.get(source, 0))
        records = counts["rows"] + counts["quarantined"]
        if quarantined != counts["quarantined"] or kept + rejected != counts["rows"] * fan_out:
            raise InvariantError(
                f"source {source}: {records} input records but kept {kept} + rejected {rejected} "
                f"(fan-out {fan_out}) + quarantined {quarantined} do not add up"
            )
        sources[source] = {"records": records, "rows": counts["rows"], "kept": kept, "rejected": rejected,
                           "quarantined": quarantined}
    per_lang = (
        rows.group_by("lang").agg(
            pl.len().alias("assigned"),
            (pl.col("status") == STATUS_KEPT).sum().alias("kept"),
            (pl.col("status") == STATUS_REJECTED).sum().alias("rejected"),
            pl.col("score_bt_chrf").mean().alias("mean_bt_chrf"),
        ).sort("lang").collect()
    )
    reasons = (
        rows.filter(pl.col("status") == STATUS_REJECTED).group_by(["lang", "reject_reason"]).len()
        .sort(["lang", "reject_reason"]).collect()
    )
    quarantine_reasons = bad.group_by(["source", "field", "reason"]).len().sort(["source", "field"]).to_dicts() if bad.height else []
    return {
        "totals": {
            "records": sum(s["records"] for s in sources.values()),
            "kept": sum(s["kept"] for s in sources.values()),
            "rejected": sum(s["rejected"] for s in sources.values()),
            "quarantined": sum(s["quarantined"] for s in sources.values()),
        },
        "sources": sources,
        "languages": {r["lang"]: {k: v for k, v in r.items() if k != "lang"} for r in per_lang.to_dicts()},
        "reject_reasons": [{"lang": r["lang"], "reason": r["reject_reason"], "rows": r["len"]} for r in reasons.to_dicts()],
        "quarantine_reasons": [
            {"source": r["source"], "field": r["field"], "reason": r["reason"], "rows": r["len"]} for r in quarantine_reasons
        ],
    }


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Shards left by an earlier run with more parts than this one would be mistaken for data."""
    for sub in ("data", "rejects", "quarantine"):
        for path in (out_dir / sub).rglob("*.parquet") if (out_dir / sub).exists() else ():
            if str(path.relative_to(out_dir)) not in keep:
                path.unlink()

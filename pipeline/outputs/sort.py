"""Rows in their final order without holding a language in memory: spill by group, sort in buckets.

A group's (status, language) rows are never all in memory. The processed chunks are read once and split
into per-group spill files; a group is then sorted in buckets of at most about ``sort_bucket_rows`` rows
(ranges of the example_id, a hex hash, so buckets are even), each bucket spilled sorted, and shards are
streamed from the bucket files in order. Concatenated buckets are the group sorted as a whole, and
polars' streaming Parquet sink writes the same bytes as writing the whole frame, so the bucket count
never shows in the output.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.schema import ROW_SCHEMA, STATUS_KEPT, STATUS_REJECTED

SORTED_DIR = "_sorted"  # under the spill folder: one group's sorted buckets, removed once its shards are written
# Rows sorted in memory at once (one bucket). Memory vs passes: each bucket is one filtered scan of the
# group's spill files, so a group of N rows is read about N / SORT_BUCKET_ROWS times.
SORT_BUCKET_ROWS = 20_000
ID_PREFIX_CHARS = 4  # example_id prefix the bucket ranges split (16**4 values: even buckets up to 65536)


@dataclass(frozen=True)
class SortedRows:
    """A group's rows in their final order, left on disk: a lazy scan, its row count and its in-memory
    (Arrow) size, which ``shard_bytes`` turns into rows per file."""

    frame: pl.LazyFrame
    height: int
    estimated_bytes: int



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


def sorted_quarantine(bad: pl.LazyFrame, spill_dir: Path, with_size: bool) -> SortedRows:
    spill_dir.mkdir(parents=True, exist_ok=True)
    path = spill_dir / "quarantine.parquet"
    bad.sort(["source", "source_file", "record_index"]).sink_parquet(path, compression="lz4")
    height = pl.scan_parquet(path).select(pl.len()).collect().item()
    return SortedRows(pl.scan_parquet(path), height, pl.read_parquet(path).estimated_size() if with_size else 0)

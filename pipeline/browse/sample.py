"""Which rows a page shows: a seeded sample per language and task, and the full counts it is drawn from.

A row's place in the sample is a hash of (seed, task, example_id), not its position in a shard: the same
output and seed give the same rows, a row added to the output enters the sample only where its own hash
is among the smallest, and kept and rejected rows are drawn together in proportion to their counts.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

READ_BATCH_ROWS = 65_536  # rows of key columns read at once while counting and sampling
KEY_COLUMNS = ("example_id", "task", "status", "reject_reason")


def sample_key(seed: int, task: str, example_id: str) -> int:
    """The row's place in the seeded order: the first 8 bytes of sha1(seed, task, example_id)."""
    digest = hashlib.sha1(f"{seed}\x1f{task}\x1f{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class TaskSample:
    """One page: the counts of every row of a language and task by status and by reject reason, and the
    sampled rows as (sample key, example_id, index of the shard holding it), smallest key first (the page's
    order)."""

    status: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    chosen: list[tuple[int, str, int]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.status.values())


def sample_language(paths: list[Path], sample: int, seed: int) -> dict[str, TaskSample]:
    """Per task of one language's shards (kept and rejected): its counts and the ``sample`` rows with the
    smallest keys (``sample`` 0: every row). Only the key columns are read, a batch at a time."""
    import pyarrow.parquet as pq

    tasks: dict[str, TaskSample] = {}
    for index, path in enumerate(paths):
        shard = pq.ParquetFile(path)
        missing = [c for c in KEY_COLUMNS if c not in shard.schema_arrow.names]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)}; browse reads the shards of an output of "
                             "this tool (data/<lang>/, rejects/<lang>/)")
        for batch in shard.iter_batches(batch_size=READ_BATCH_ROWS, columns=list(KEY_COLUMNS)):
            cols = batch.to_pydict()
            fresh: dict[str, list[tuple[int, str, int]]] = {}
            for example_id, task, status, reason in zip(*(cols[c] for c in KEY_COLUMNS)):
                page = tasks.setdefault(task, TaskSample())
                page.status[status] += 1
                if reason:
                    page.reasons[reason] += 1
                fresh.setdefault(task, []).append((sample_key(seed, task, example_id), example_id, index))
            for task, items in fresh.items():
                page = tasks[task]
                merged = page.chosen + items
                page.chosen = heapq.nsmallest(sample, merged) if sample else sorted(merged)
    return tasks


def read_sampled_rows(paths: list[Path], pages: dict[str, TaskSample], sample: int) -> dict[str, list[dict]]:
    """Task -> the sampled rows (every column of the shard, the kept shards' ``image`` too), in page order.

    ``sample`` is the one ``pages`` were drawn with. Only the shards holding sampled rows are opened. In
    them, pyarrow skips a row group whose ``example_id`` range (its statistics) holds no sampled id, but the
    sample is drawn by hash, so its ids are spread over the whole range: once a shard holds more sampled
    rows than row groups, nearly every row group holds one and is read, and its rows are filtered on
    ``example_id``. ``sample`` 0 samples every row, so the shards are read without a filter (an ``is_in``
    of every id of the shard would select the same rows, testing each against all of them)."""
    import pyarrow.parquet as pq

    wanted: dict[int, set[str]] = {}
    for page in pages.values():
        for _, example_id, index in page.chosen:
            wanted.setdefault(index, set()).add(example_id)
    frames = []
    for index, ids in sorted(wanted.items()):
        table = pq.read_table(paths[index], filters=[("example_id", "in", sorted(ids))] if sample else None)
        if table.num_rows:
            frames.append(pl.from_arrow(table))
    found: dict[tuple[str, str], dict] = {}
    if frames:
        for row in pl.concat(frames, how="diagonal_relaxed").iter_rows(named=True):
            found[(row["task"], row["example_id"])] = row
    return {task: [found[(task, example_id)] for _, example_id, _ in page.chosen if (task, example_id) in found]
            for task, page in pages.items()}

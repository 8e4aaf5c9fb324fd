"""Mixing the training stream across shards: every batch a draw from the whole language mix.

The pipeline writes one language per shard, and a bounded shuffle buffer over shards read one after
another yields long single-language runs (thousands of batches of German, then of French...). mBLIP
reshuffled its whole training file every epoch, so every batch was an i.i.d. draw from the full mix
(Geigle et al. 2024, App. A). ``interleave_rows`` gets the same mix with bounded memory: all shards are
open at once and each next row comes from a shard drawn with probability proportional to its
remaining rows. That is a uniformly random interleaving of the shards (each shard's rows keep their
order; the trainer's shuffle buffer then shuffles locally), so any window of the stream holds the
languages in proportion to their rows. Memory: one record batch of ``batch_rows`` text rows per shard.
Seeded: the same (seed, epoch) gives the same order, which exact resume relies on.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from model.data import iter_rows

INTERLEAVE_BATCH_ROWS = 256  # rows read at a time per open shard: memory = shards x this


def shard_rows(path: Path) -> int:
    """Rows of a Parquet file from its footer (nothing else is read)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def interleave_rows(paths: Sequence[Path], rng: random.Random, read=None,
                    batch_rows: int = INTERLEAVE_BATCH_ROWS, counts: Sequence[int] | None = None,
                    ) -> Iterator[dict[str, Any]]:
    """Rows of all ``paths``, interleaved at random in proportion to the rows each has left.

    ``read(path, batch_rows)`` yields a file's rows (default: ``model.data.iter_rows`` of that file).
    ``counts``: each file's rows (the manifest's); default: each Parquet file's footer.
    """
    if read is None:
        def read(path, rows):
            return iter_rows([path], rows)

    paths = list(paths)
    remaining = list(counts) if counts is not None else [shard_rows(p) for p in paths]
    iterators = [read(p, batch_rows) for p in paths]
    while True:
        live = [i for i, n in enumerate(remaining) if n > 0]
        if not live:
            return
        cumulative = list(accumulate(remaining[i] for i in live))
        pick = live[bisect.bisect_right(cumulative, rng.randrange(cumulative[-1]))]
        row = next(iterators[pick], None)
        if row is None:  # the footer promised more rows than the file yields
            raise ValueError(f"{paths[pick]}: fewer rows than its metadata says; is the shard truncated?")
        remaining[pick] -= 1
        yield row

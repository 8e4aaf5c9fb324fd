"""The training stream's shards: each checked against the manifest, then mixed so that every batch is a draw
from the whole language mix.

The pipeline writes one language per shard, and a bounded shuffle buffer over shards read one after
another yields long single-language runs (thousands of batches of German, then of French...). mBLIP
reshuffled its whole training file every epoch, so every batch was an i.i.d. draw from the full mix
(Geigle et al. 2024, App. A). ``interleave_rows`` gets the same mix with bounded memory: all shards are
open at once and each next row comes from a shard drawn with probability proportional to its
remaining rows. That is a uniformly random interleaving of the shards (each shard's rows keep their
order; the trainer's shuffle buffer then shuffles locally), so any window of the stream holds the
languages in proportion to their rows. Memory: one record batch of ``batch_rows`` text rows per shard.
Seeded: the same (seed, epoch) gives the same order, which exact resume relies on.

``ShardVerifier`` checks each shard's bytes and sha256 against the manifest before the stream first
reads it (a shard rewritten after the pipeline wrote it fails naming the shard, as ``mblip verify``
would report it); ``dataset_identity`` is what a checkpoint records of its data, so that a resume on
another dataset is refused.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from model.data import DataFile, TrainingData, iter_rows
from pipeline.io import join_location, location_signature, sha256_file

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


# ---------------------------------------------------------------------------------------------------
# Shard checks and the dataset's identity
# ---------------------------------------------------------------------------------------------------


@dataclass
class ShardVerifier:
    """Each kept shard checked against the manifest's ``bytes`` and ``sha256`` before its first use.

    A shard is hashed in full the first time (``check_all`` at start-up, before the model is loaded),
    then only its ``stat`` is compared: the same size, mtime and inode as when it was hashed means the
    same file, anything else hashes it again. The verified set travels with the stream into its loader
    workers (a copy per worker), so they only ``stat`` each shard at the start of every epoch.
    Cost: one sequential read of the kept shards per process (measured in docs/training.md).
    """

    data: TrainingData
    verified: dict[Path, tuple] = field(default_factory=dict)  # path -> location_signature when it was hashed
    entries: dict[Path, DataFile] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.entries = {f.path: f for f in self.data.files}
        unsigned = [str(f.path) for f in self.data.files if not f.sha256]
        if unsigned:
            manifest = join_location(self.data.root, "manifest.json")
            raise ValueError(
                f"{manifest}: no sha256 for {len(unsigned)} kept shard(s) ({unsigned[0]}, "
                "...); the trainer checks every shard against the manifest, which a pipeline output always "
                "records: point data.manifest at a finished `mblip generate` output"
            )

    def check_all(self) -> None:
        for file in self.data.files:
            self.check(file.path)

    def check(self, path: Path) -> None:
        """Raises ``ValueError`` naming the shard when it is missing or differs from its manifest entry."""
        entry = self.entries[path]
        try:
            signature = location_signature(path)
        except FileNotFoundError:
            raise ValueError(
                f"{path}: shard listed in {join_location(self.data.root, 'manifest.json')} is missing; run "
                f"`mblip verify {self.data.root}` and rerun the pipeline's command to rewrite it"
            ) from None
        if self.verified.get(path) == signature:
            return
        size = signature[0]
        digest = sha256_file(path) if entry.bytes in (None, size) else None
        if digest != entry.sha256:
            found = f"sha256 {digest[:12]}…" if digest else f"{size} bytes"
            recorded = f"sha256 {entry.sha256[:12]}…" if digest else f"{entry.bytes} bytes"
            raise ValueError(
                f"{path}: {found} does not match the manifest's {recorded}; the shard changed after the pipeline "
                f"wrote it: `mblip verify {self.data.root}` lists what changed, and rerunning the pipeline's "
                "command rewrites it"
            )
        self.verified[path] = signature


def _relative(path: str | Path, root: str | Path) -> str:
    """``path`` within ``root`` as a POSIX string, for local paths and URLs alike."""
    if isinstance(path, Path) and isinstance(root, Path):
        return path.relative_to(root).as_posix()
    return str(path)[len(str(root).rstrip("/")) + 1:]


def dataset_identity(data: TrainingData) -> dict[str, Any]:
    """What a checkpoint records of its training data: a digest of the kept shards it streams (path within
    the output and sha256 of each), so a copied or moved output is the same dataset and a regenerated or
    other one is not."""
    h = hashlib.sha256()
    for rel, sha256 in sorted((_relative(file.path, data.root), file.sha256) for file in data.files):
        h.update(f"{rel}\x1f{sha256}\n".encode())
    return {"id": h.hexdigest(), "shards": len(data.files), "rows": data.rows, "manifest": str(data.root)}

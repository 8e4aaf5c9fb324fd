"""A recipe's training file written in the data pipeline's output layout, so the unchanged trainer streams it.

``OUTPUT/data/`` holds ``data/en/part-0000N.parquet`` (the rows, spread over ``SHARDS`` shards by a hash of the
example id, so the trainer's random interleaving of shards mixes the file's order), ``quarantine.jsonl`` (every
malformed record: file, record index, record id, field, reason) and ``manifest.json``, written last: each shard
with its rows, bytes and sha256 (the trainer checks them), the image root, and the counts (records = rows'
records + quarantined + skipped). It is built under a temporary name and renamed into place; a rerun whose
training file (path, size, mtime), image folder, recipe and splits are unchanged reuses it as it is, so a
resumed fine-tune streams the same shards.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.data import EXTRA_IMAGES_COLUMN, ROW_COLUMNS, hash_fraction
from model.finetune.readers import QUARANTINED, RECIPES, BadRecord, ImageIndex, read_training_file
from pipeline.io import sha256_file

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the rows change, so older prepared data is rebuilt
SHARDS = 8  # Parquet shards per prepared file; rows go to a shard by a hash of their example id
WRITE_ROWS = 4096  # rows buffered per shard before a row group is written (bounds memory)
QUARANTINE_FILE = "quarantine.jsonl"
ON_BAD_RECORD = ("quarantine", "error")


@dataclass(frozen=True)
class PreparedData:
    root: Path  # the folder holding manifest.json: the trainer's data.manifest
    counts: dict[str, Any]  # records, rows, quarantined, skipped (by reason)
    reused: bool


def fingerprint(recipe: str, train_file: Path, images: Path, splits: Sequence[str]) -> dict[str, Any]:
    stat = Path(train_file).stat()
    return {"format": FORMAT_VERSION, "recipe": recipe, "train_file": str(Path(train_file).resolve()),
            "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "images": str(Path(images).resolve()),
            "splits": list(splits)}


def row_schema():
    import pyarrow as pa

    columns = (*ROW_COLUMNS, "prompt", "target")
    return pa.schema([*((name, pa.string()) for name in columns), (EXTRA_IMAGES_COLUMN, pa.list_(pa.string()))])


class ShardWriter:
    """Rows into ``SHARDS`` Parquet files (zstd), a bounded buffer per shard; empty shards are not written."""

    def __init__(self, root: Path):
        self.root, self.schema = root, row_schema()
        self.buffers: list[list[dict]] = [[] for _ in range(SHARDS)]
        self.writers: dict[int, Any] = {}
        self.rows = [0] * SHARDS

    def rel(self, shard: int) -> str:
        return f"data/en/part-{shard:05d}.parquet"

    def add(self, row: dict) -> None:
        shard = int(hash_fraction(f"shard\x1f{row['example_id']}") * SHARDS)
        self.buffers[shard].append(row)
        if len(self.buffers[shard]) >= WRITE_ROWS:
            self._flush(shard)

    def _flush(self, shard: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffers[shard]:
            return
        if shard not in self.writers:
            path = self.root / self.rel(shard)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writers[shard] = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.writers[shard].write_table(pa.Table.from_pylist(self.buffers[shard], schema=self.schema))
        self.rows[shard] += len(self.buffers[shard])
        self.buffers[shard] = []

    def close(self) -> list[dict]:
        """The manifest entries of the written shards (as the pipeline writes kept shards)."""
        for shard in range(SHARDS):
            self._flush(shard)
        entries = []
        for shard, writer in sorted(self.writers.items()):
            writer.close()
            path = self.root / self.rel(shard)
            entries.append({"path": self.rel(shard), "split": "kept", "lang": "en", "rows": self.rows[shard],
                            "bytes": path.stat().st_size, "sha256": sha256_file(path)})
        return entries


def prepare_task_data(recipe: str, train_file: str | Path, images: str | Path, out: str | Path,
                      on_bad_record: str = "quarantine", splits: Sequence[str] = ("train",)) -> PreparedData:
    """The recipe's training rows at ``out`` (see the module docstring); reused when its inputs are unchanged.

    ``on_bad_record``: "quarantine" (malformed records go to ``quarantine.jsonl``, counted) or "error" (the
    first one raises ``ValueError`` naming file, record and field)."""
    if on_bad_record not in ON_BAD_RECORD:
        raise ValueError(f"finetune.on_bad_record={on_bad_record!r}: choose one of {', '.join(ON_BAD_RECORD)}")
    out, images = Path(out), Path(images)
    if not Path(train_file).is_file():
        raise FileNotFoundError(f"finetune.train_file: {train_file} does not exist (the {recipe} recipe's training "
                                "file as published; see configs/finetune/ for each format)")
    if not images.is_dir():
        raise FileNotFoundError(f"finetune.images: {images} is not a folder (the {recipe} training images)")
    wanted = fingerprint(recipe, Path(train_file), images, splits)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text(encoding="utf-8")).get("finetune", {})
        if previous.get("fingerprint") == wanted:
            log.info("reusing the prepared %s training data in %s", recipe, out)
            return PreparedData(out, previous["counts"], reused=True)
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writer = ShardWriter(tmp)
    counts = _write_rows(read_training_file(recipe, Path(train_file), ImageIndex(images), splits), writer,
                         tmp / QUARANTINE_FILE, on_bad_record)
    files = writer.close()
    if not files:
        raise ValueError(f"{train_file}: no usable record for the {recipe} recipe ({counts['quarantined']} "
                         f"quarantined, skipped {counts['skipped']}); the first reasons are logged above")
    manifest = {"files": files, "image_roots": {RECIPES[recipe]: str(images.resolve())},
                "finetune": {"fingerprint": wanted, "counts": counts}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")  # last: means complete
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log.info("%s training data: %s", recipe, counts)
    return PreparedData(out, counts, reused=False)


def _write_rows(items, writer: ShardWriter, quarantine: Path, on_bad_record: str) -> dict[str, Any]:
    """Rows to ``writer``, malformed records to ``quarantine`` (or raised), skipped ones counted by reason."""
    counts: dict[str, Any] = {"records": 0, "rows": 0, "quarantined": 0, "skipped": {}}
    with quarantine.open("w", encoding="utf-8") as bad:
        for item in items:
            counts["records"] += 1
            if not isinstance(item, BadRecord):
                for row in item:
                    writer.add(row)
                counts["rows"] += len(item)
                continue
            if item.kind != QUARANTINED:
                reason = item.reason.split(" (")[0]
                counts["skipped"][reason] = counts["skipped"].get(reason, 0) + 1
                continue
            if on_bad_record == "error":
                raise ValueError(f"{item.describe()}; fix the record, or set finetune.on_bad_record: quarantine "
                                 "to set such records aside")
            if counts["quarantined"] < 5:
                log.warning("quarantined: %s", item.describe())
            counts["quarantined"] += 1
            bad.write(json.dumps({"source_file": item.source_file, "record_index": item.record_index,
                                  "record_id": item.record_id, "field": item.field, "reason": item.reason},
                                 ensure_ascii=False) + "\n")
    return counts

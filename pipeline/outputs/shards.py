"""Shard groups: one folder of zstd Parquet files per split and language, sorted by example_id.

Groups are written into the staging folder (see ``pipeline/outputs/publish.py``), never into the
published output. Resume: the inputs (processed chunks and quarantine chunks, by checksum) and the shard
layout give a fingerprint. As each group is complete in staging, a small record is written:
``_work/shard-groups/<group>.json`` with the fingerprint and every file's rows, bytes and sha256. A
rerun with the same fingerprint reuses a recorded group whose files are intact, each found in staging
or in the published output (hard-linked into staging from there): after a kill while shards are
written, the finished groups are in staging; after a kill during the publish, some are already moved
out; after a complete run, all of them are published. Any other group is written again. Records of
another fingerprint, or of groups the current inputs no longer have, are removed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.io import (
    PARQUET_COMPRESSION, link_or_copy, read_json, sha256_file, sink_parquet_atomic, write_json_atomic,
)
from pipeline.output_dir import WORK_DIR
from pipeline.outputs.images import write_embedded_shard
from pipeline.outputs.sort import SortedRows
from pipeline.schema import SCHEMA_VERSION

GROUP_RECORDS = f"{WORK_DIR}/shard-groups"  # one record per shard group complete in staging
SPLIT_KEPT, SPLIT_REJECTED, SPLIT_QUARANTINE = "kept", "rejected", "quarantine"
DATA_DIR, REJECTS_DIR, QUARANTINE_DIR = "data", "rejects", "quarantine"
SHARD_DIRS = (DATA_DIR, REJECTS_DIR, QUARANTINE_DIR)


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

    def rows_for(self, height: int, estimated_bytes: int) -> int:
        """Rows per file for ``height`` rows taking ``estimated_bytes`` in memory (Arrow) all together."""
        rows = self.shard_rows
        if self.shard_bytes and height:
            row_bytes = max(1.0, estimated_bytes / height)
            rows = min(rows, max(1, int(self.shard_bytes // row_bytes)))
        return rows


def inputs_fingerprint(paths: Iterable[str | Path], layout: ShardLayout, extra: dict | None = None) -> str:
    """What the shards' bytes depend on: input contents, schema, layout and compression (and ``extra``, when
    given: the embedded images' roots)."""
    h = hashlib.sha256()
    h.update(json.dumps({"schema": SCHEMA_VERSION, "layout": asdict(layout), "compression": PARQUET_COMPRESSION,
                         **({"extra": extra} if extra else {})}, sort_keys=True).encode())
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




def group_key(split: str, lang: str | None) -> str:
    """The record name of a group: ``kept-de``, ``rejected-de``, ``quarantine``."""
    return f"{split}-{lang}" if lang else split


class ShardGroups:
    """Writes shard groups into ``staging`` and records each one; reuses recorded groups that are intact.

    ``files``: the entries of every group written or reused so far, in order. ``reused`` / ``written``:
    files taken from a recorded group / files written.
    """

    def __init__(self, out_dir: Path, staging: Path, fingerprint: str, layout: ShardLayout,
                 embed_images: dict[str, str] | None = None):
        self.out_dir = out_dir
        self.embed_images = embed_images  # source -> image root: kept shards carry their images (outputs/images.py)
        self.staging = staging
        self.fingerprint = fingerprint
        self.layout = layout
        self.records = out_dir / GROUP_RECORDS
        self.files: list[dict] = []
        self.reused = self.written = 0
        self._done: list[str] = []
        self._recorded: dict[str, list[dict]] = {}
        for path in sorted(self.records.glob("*.json")) if self.records.is_dir() else []:
            record = read_json(path)
            if isinstance(record, dict) and record.get("inputs_fingerprint") == fingerprint \
                    and isinstance(record.get("files"), list):
                self._recorded[path.stem] = record["files"]
            else:  # another fingerprint (or unreadable): it can never be reused
                path.unlink()

    def write_group(self, split: str, lang: str | None, rel_dir: str, build: Callable[[bool], SortedRows]) -> bool:
        """Shard ``build(with_size)`` (sorted rows) into ``staging/rel_dir``, unless the group is recorded
        and intact; returns whether it was reused. ``with_size``: whether ``shard_bytes`` needs the rows'
        in-memory size."""
        key = group_key(split, lang)
        self._done.append(key)
        recorded = self._recorded.get(key)
        if recorded is not None and self._restore(recorded):
            self.files.extend(recorded)
            self.reused += len(recorded)
            return True
        shutil.rmtree(self.staging / rel_dir, ignore_errors=True)
        rows = build(bool(self.layout.shard_bytes))
        entries = []
        step = self.layout.rows_for(rows.height, rows.estimated_bytes)
        for i in range(-(-rows.height // step)):
            rel = f"{rel_dir}/{shard_name(i)}"
            if self.embed_images is not None and split == SPLIT_KEPT:
                write_embedded_shard(rows.frame.slice(i * step, step), self.staging / rel, self.embed_images,
                                     self.layout.row_group_rows)
            else:
                sink_parquet_atomic(rows.frame.slice(i * step, step), self.staging / rel, self.layout.row_group_rows)
            entries.append(file_entry(self.staging, rel, split, lang, min(step, rows.height - i * step)))
        self.written += len(entries)
        write_json_atomic({"inputs_fingerprint": self.fingerprint, "split": split, "lang": lang, "files": entries},
                          self.records / f"{key}.json")
        self._recorded[key] = entries
        self.files.extend(entries)
        return False

    def _restore(self, entries: list[dict]) -> bool:
        """Every file of a recorded group intact in staging, linked in from the published output where it
        is intact there instead (a kill during the publish, or a finished run); False if one is neither."""
        for entry in entries:
            if is_intact(self.staging, entry):
                continue
            if not is_intact(self.out_dir, entry):
                return False
            link_or_copy(self.out_dir / entry["path"], self.staging / entry["path"])
        return True

    def prune(self) -> None:
        """Remove the records of groups this write did not have."""
        for key in set(self._recorded) - set(self._done):
            (self.records / f"{key}.json").unlink(missing_ok=True)

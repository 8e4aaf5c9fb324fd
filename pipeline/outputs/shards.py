"""Shard groups: one folder of zstd Parquet files per split and language, sorted by example_id.

Resume: the inputs (processed chunks and quarantine chunks, by checksum) and the shard layout give a
fingerprint. A rerun with the same fingerprint reuses every shard the previous manifest (or the journal
of an interrupted run) certifies and whose bytes still match its sha256; anything else is rewritten.
Before the first file is replaced, the old manifest is retired, so a run killed half-way leaves no
manifest certifying a file it did not finish; ``.manifest.partial.json`` keeps what was finished.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.io import (
    PARQUET_COMPRESSION, link_or_copy, read_json, sha256_file, sink_parquet_atomic, write_bytes_atomic,
    write_json_atomic, write_text_atomic,
)
from pipeline.output_dir import MANIFEST
from pipeline.outputs.sort import SortedRows
from pipeline.schema import SCHEMA_VERSION

JOURNAL = ".manifest.partial.json"
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
        previous = read_json(out_dir / MANIFEST)
        # Files an earlier run wrote here (whatever its inputs): the only ones ``remove_stale`` deletes.
        self._owned = {e.get("path") for key in ("files", "meta_files")
                       for e in ((previous or {}).get(key) or []) if isinstance(e, dict)}
        if previous and previous.get("inputs_fingerprint") == fingerprint:
            for entry in previous.get("files", []):
                self._groups.setdefault(_group_key(entry["split"], entry["lang"]), []).append(entry)
        journal = read_json(out_dir / JOURNAL)
        self._owned |= set((journal or {}).get("owned") or []) | set((journal or {}).get("files") or {})
        if journal and journal.get("inputs_fingerprint") == fingerprint:
            self._groups.update(journal.get("groups", {}))
            self._certified.update(journal.get("files", {}))
        for entries in self._groups.values():
            self._certified.update({e["path"]: e for e in entries})
        # Groups a published output certifies under the same fingerprint: linked in, not recomputed.
        self._external: dict[str, list[dict]] = {}
        self._reuse_from = Path(reuse_from) if reuse_from else None
        published = read_json(self._reuse_from / MANIFEST) if self._reuse_from else None
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
                link_or_copy(self._reuse_from / entry["path"], self.out_dir / entry["path"])
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


def _group_key(split: str, lang: str | None) -> str:
    return f"{split}/{lang or '-'}"

"""``mblip export OUT --format webdataset``: the kept rows as WebDataset tar shards, for training at scale.

Layout (the WebDataset convention, as img2dataset writes it): ``DEST/webdataset/{lang}/shard-00000.tar``, each
sample two files sharing a key, the row's ``example_id``: ``{key}.jpg`` (the image's bytes as stored; a PNG
keeps ``.png``) and ``{key}.json`` (the row's columns the trainer reads: ``WDS_COLUMNS``). At most
``shard_rows`` samples per tar (img2dataset's default: 10,000). ``DEST/webdataset/manifest.json`` lists every
shard with its language, rows, rows per task, bytes and sha256, and ``"format": "webdataset"``: point the
trainer's ``data.manifest`` at ``DEST/webdataset`` (a folder or an fsspec URL) to train from the tars.

Image bytes come from the shard's ``image`` column when the output embeds them (``output.images: embed``),
else from the source's image root (``pipeline.io.open_location``: a folder or a URL). Unlike the embedded
Parquet column, a tar stores a shared image once per row that uses it (the layout has no references).
Tars are written with the ``webdataset`` library's ``TarWriter`` (fixed mtime: the same rows give the same
bytes), each under a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from pipeline.io import join_location, open_location, sha256_file, write_json_atomic
from pipeline.output_dir import MANIFEST
from pipeline.outputs.images import IMAGE_COLUMN
from pipeline.outputs.shards import SPLIT_KEPT

WDS_DIR = "webdataset"
WDS_FORMAT = "webdataset"
WDS_SHARD_ROWS = 10_000
# The row columns a sample's JSON holds: what the trainer reads from a kept shard (model/data.py ROW_COLUMNS
# and OPTIONAL_COLUMNS; a test keeps them in step), plus the source file for provenance.
WDS_COLUMNS = ("example_id", "task", "image_id", "image_path", "source", "source_file", "text_en", "answer_en", "lang",
               "text_tgt", "answer_tgt", "answer_translated", "prompt", "target")
READ_BATCH_ROWS = 1024


def wds_shard_name(index: int) -> str:
    return f"shard-{index:05d}.tar"


def image_extension(image_path: str) -> str:
    """The sample's image extension: the file's own (``jpeg`` -> ``jpg``); ``jpg`` when it has none."""
    suffix = PurePosixPath(image_path or "").suffix.lower().lstrip(".")
    return {"jpeg": "jpg", "": "jpg"}.get(suffix, suffix)


class _ShardSink:
    """Samples of one language into tar shards of at most ``shard_rows``; each tar atomic."""

    def __init__(self, folder: Path, rel_dir: str, lang: str, shard_rows: int):
        self.folder, self.rel_dir, self.lang, self.shard_rows = folder, rel_dir, lang, shard_rows
        self.entries: list[dict] = []
        self._writer = self._handle = self._tmp = None
        self._rows, self._tasks = 0, {}

    def write(self, row: dict, image: bytes) -> None:
        import webdataset

        if self._writer is None:
            path = self.folder / self.rel_dir / wds_shard_name(len(self.entries))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            self._handle = open(self._tmp, "wb")
            self._writer = webdataset.TarWriter(self._handle, mtime=0.0)
        self._writer.write({"__key__": row["example_id"], image_extension(row["image_path"]): image,
                            "json": {c: row.get(c) for c in WDS_COLUMNS}})
        self._rows += 1
        self._tasks[row["task"]] = self._tasks.get(row["task"], 0) + 1
        if self._rows == self.shard_rows:
            self.close()

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._handle.close()
        path = self._tmp.with_name(self._tmp.name.split(".tmp-")[0].lstrip("."))
        os.replace(self._tmp, path)
        self.entries.append({"path": f"{self.rel_dir}/{path.name}", "lang": self.lang, "rows": self._rows,
                             "tasks": dict(sorted(self._tasks.items())), "bytes": path.stat().st_size,
                             "sha256": sha256_file(path)})
        self._writer = self._handle = self._tmp = None
        self._rows, self._tasks = 0, {}


def _row_images(batch: list[dict], roots: dict[str, str], cache: dict[str, bytes]) -> list[bytes]:
    images = []
    for row in batch:
        embedded = row.get(IMAGE_COLUMN)
        if embedded and embedded.get("bytes") is not None:
            images.append(embedded["bytes"])
            continue
        root = roots.get(row["source"])
        location = str(join_location(root, row["image_path"])) if root else row["image_path"]
        if location not in cache:
            if len(cache) > 4096:  # bounded: rows sharing an image are near each other (sorted by example_id)
                cache.clear()
            try:
                with open_location(location, "rb") as handle:
                    cache[location] = handle.read()
            except OSError as e:
                raise OSError(f"webdataset export: row {row['example_id']} (source {row['source']}): cannot read "
                              f"its image {location}: {e}") from e
        images.append(cache[location])
    return images


def export_webdataset(out_dir: str | Path, dest: str | Path | None = None, languages: tuple[str, ...] = (),
                      shard_rows: int = WDS_SHARD_ROWS) -> dict:
    """Write ``out_dir``'s kept rows as tar shards under ``dest/webdataset`` (default OUT/export); its manifest."""
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    folder = (Path(dest) if dest else out_dir / "export") / WDS_DIR
    manifest_path = out_dir / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; export needs a finished output (run `mblip verify`)")
    if shard_rows < 1:
        raise ValueError(f"webdataset shard_rows must be at least 1, got {shard_rows}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    roots = manifest.get("image_roots") or {}
    by_lang: dict[str, list[str]] = {}
    for f in manifest["files"]:
        if f["split"] == SPLIT_KEPT and (not languages or f["lang"] in languages):
            by_lang.setdefault(f["lang"], []).append(f["path"])
    entries, cache = [], {}
    for lang, paths in sorted(by_lang.items()):
        sink = _ShardSink(folder, lang, lang, shard_rows)
        for rel in paths:
            parquet = pq.ParquetFile(out_dir / rel)
            columns = [c for c in (*WDS_COLUMNS, IMAGE_COLUMN) if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns):
                rows = batch.to_pylist()
                for row, image in zip(rows, _row_images(rows, roots, cache)):
                    sink.write(row, image)
        sink.close()
        entries += sink.entries
    listed = {e["path"] for e in entries}
    for old in sorted(folder.glob("*/shard-*.tar")):  # shards of an earlier, larger export
        if old.relative_to(folder).as_posix() not in listed:
            old.unlink()
    result = {"format": WDS_FORMAT, "source_manifest_created": manifest.get("created"), "image_roots": roots,
              "files": entries}
    write_json_atomic(result, folder / MANIFEST)
    return result

"""The ingest stage: a source's reader streamed into English row chunks and quarantine chunks under the
work folder, skipped while the source's files are unchanged (``source_fingerprint``)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.ingest.base import SourceError
from pipeline.ingest.checks import CheckedReader, InputChecks
from pipeline.ingest.digests import FileDigests
from pipeline.ingest.images import quarantine_missing_images
from pipeline.ingest.registry import SourceConfig
from pipeline.ingest.remote import RemoteImageRoot, localize_source
from pipeline.io import is_url, write_json_atomic, write_parquet_atomic
from pipeline.kill_points import kill_point

log = logging.getLogger(__name__)

INGEST_DIR = "ingest"
QUARANTINE_DIR = "quarantine"
INGEST_DONE = "_INGESTED.json"
FILE_DIGESTS = "file-digests.json"  # the source files' digests (pipeline/ingest/digests.py)


def chunk_name(index: int) -> str:
    return f"chunk-{index:05d}.parquet"


@dataclass(frozen=True)
class IngestResult:
    source: str
    chunks: tuple[str, ...]  # paths of the English row chunks
    rows: int
    quarantined: int
    counters: dict = field(default_factory=dict)  # what the reader dropped inside kept records, by name
    extra: dict | None = None  # a reader's own statistics (web sources: sampling, fetch, matching)

    @property
    def records(self) -> int:
        return self.rows + self.quarantined


def source_fingerprint(paths: dict, chunk_rows: int, cache: str | Path | None = None) -> str:
    """The identity of a source's ingest: its files' contents, its knobs and the chunk size (a change means
    re-ingest). ``paths``: the source's ``ingest_params``; a string naming a file counts by the digest of its
    bytes, any other value as it is. ``cache``: where digests are kept between runs (``FileDigests``)."""
    digests = FileDigests(cache)
    parts = {"chunk_rows": chunk_rows}
    for key, value in sorted(paths.items()):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, str):  # a knob (number, mapping): part of the identity as it is
                parts[key] = item
                continue
            path = Path(item)
            parts[f"{key}:{item}"] = digests.digest(path) if path.is_file() else item
    digests.save()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def ingest_source(reader, work_dir: str | Path, chunk_rows: int, fingerprint: str | None = None,
                  image_root: str | Path | RemoteImageRoot | None = None) -> IngestResult:
    """Stream a source into English row chunks plus quarantine chunks; skipped when already done.

    With ``image_root``, rows whose image is not a file under it are quarantined (``image_missing``).

    A finished ingest is reused only while ``fingerprint`` (see ``source_fingerprint``) is unchanged: a
    source that grew or was replaced is read again, and its old chunks are removed first.
    """
    work_dir = Path(work_dir)
    src_dir = work_dir / INGEST_DIR / reader.name
    done = src_dir / INGEST_DONE
    if done.exists():
        meta = json.loads(done.read_text())
        if meta.get("fingerprint") == fingerprint:
            # stored relative to the source's ingest folder: a moved or copied output reads its own chunks
            chunks = tuple(str(src_dir / Path(c).name) for c in meta["chunks"])
            return IngestResult(reader.name, chunks, meta["rows"], meta["quarantined"], meta.get("counters") or {},
                                meta.get("extra"))
        done.unlink()
    for old in [*src_dir.glob("chunk-*.parquet"), *(work_dir / QUARANTINE_DIR / reader.name).glob("chunk-*.parquet")]:
        old.unlink()
    chunks, rows, bad, counters = [], 0, 0, {}
    for batch in reader.iter_batches(chunk_rows):
        for key, n in batch.counters.items():
            counters[key] = counters.get(key, 0) + n
        if not batch.rows.height and not batch.quarantine.height:
            continue  # only counters (the reader's last flush)
        if image_root is not None:
            batch = quarantine_missing_images(batch, image_root)
        path = write_parquet_atomic(batch.rows, src_dir / chunk_name(len(chunks)))
        chunks.append(str(path))
        if batch.quarantine.height:
            write_parquet_atomic(without_local_folders(batch.quarantine),
                                 work_dir / QUARANTINE_DIR / reader.name / Path(path).name)
        rows += batch.rows.height
        bad += batch.quarantine.height
        kill_point("ingest")  # a test hook (MBLIP_KILL_AT): a chunk written, the ingest not finished
    if rows + bad == 0:  # e.g. a Karpathy split selection that matches no image
        raise SourceError(f"source {reader.name!r} yields no records: check its files and options")
    result = IngestResult(reader.name, tuple(chunks), rows, bad, counters, getattr(reader, "stats", None) or None)
    write_json_atomic({"chunks": [Path(c).name for c in result.chunks], "rows": rows, "quarantined": bad,
                       "counters": counters, "fingerprint": fingerprint, "extra": result.extra}, done)
    log.info("ingested %s: %d rows, %d quarantined, %d chunks", reader.name, rows, bad, len(chunks))
    return result


def without_local_folders(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Quarantine records name their file without the local folder, as rows do (``relative_source_file``):
    an absolute ``source_file`` would be published in the output's quarantine shards."""
    name = pl.col("source_file")
    return quarantine.with_columns(
        pl.when(name.str.starts_with("/")).then(name.str.extract(r"([^/]*)$")).otherwise(name).alias("source_file"))


def iter_quarantine(work_dir: str | Path, sources: Iterable[str] | None = None) -> Iterator[Path]:
    """Quarantine chunks of ``sources`` (all when ``None``): a source dropped from the config is not counted."""
    root = Path(work_dir) / QUARANTINE_DIR
    if sources is None:
        yield from sorted(root.glob("*/chunk-*.parquet"))
        return
    for source in sorted(sources):
        yield from sorted((root / source).glob("chunk-*.parquet"))


def check_image_root(source: SourceConfig) -> None:
    """Refuse a source whose image root is not a folder (a mistyped path, a symlink loop) before any of
    it is read: otherwise every row would be quarantined as ``image_missing`` and the run would end
    with an empty dataset. A URL root is listed when its rows are checked (``RemoteImageRoot``)."""
    root = source.image_root
    if root is not None and not is_url(root) and not Path(root).is_dir():
        raise SourceError(f"image root not found: {root} (images: of source {source.source_name!r}); fix the path, "
                          "or set check_images: false for images that are fetched later")


def ingest_stage(source: SourceConfig, work_dir: str, chunk_rows: int, force: bool = False,
                 checks: InputChecks | None = None) -> IngestResult:
    """One source: read it into chunks (``force``: even though its files look unchanged), its rows through
    the input checks (``checks``; None = the defaults)."""
    check_image_root(source)
    checks = checks or InputChecks()
    src_dir = Path(work_dir) / INGEST_DIR / source.source_name
    if force:
        (src_dir / INGEST_DONE).unlink(missing_ok=True)
    source = localize_source(source, work_dir)  # URL source files: read through local copies
    image_root = source.image_root
    params = {**source.ingest_params(work_dir), "check_images_under": image_root or "",
              "input_checks": checks.model_dump(mode="json")}
    fingerprint = source_fingerprint(params, chunk_rows, cache=src_dir / FILE_DIGESTS)
    reader = CheckedReader(source.open_reader(work_dir), checks)
    return ingest_source(reader, work_dir, chunk_rows, fingerprint,
                         RemoteImageRoot(image_root) if is_url(image_root) else image_root)

"""Ingest resume and re-ingest, quarantine selection, and the decision step on its own."""

import json
import shutil
from pathlib import Path

import polars as pl

from pipeline.demo.data import demo_paths
from pipeline.ingest import CocoCaptionsReader
from pipeline.ingest.stage import (
    INGEST_DIR, INGEST_DONE, ingest_source, iter_quarantine, source_fingerprint,
)
from pipeline.chunks import chunk_digest


def _reader(paths):
    return CocoCaptionsReader(str(paths.captions))


def test_ingest_is_reused_while_the_source_is_unchanged_and_redone_when_it_grows(tmp_path, demo_root):
    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    paths = demo_paths(root)
    files = {"annotations": str(paths.captions)}
    work = tmp_path / "work"

    fp = source_fingerprint(files, 25)
    first = ingest_source(_reader(paths), work, 25, fp)
    assert first.rows == 60 and len(first.chunks) == 3
    digests = [chunk_digest(c) for c in first.chunks]
    mtimes = [p.stat().st_mtime_ns for p in map(Path, first.chunks)]

    again = ingest_source(_reader(paths), work, 25, source_fingerprint(files, 25))
    assert again == first
    assert [p.stat().st_mtime_ns for p in map(Path, again.chunks)] == mtimes  # not rewritten

    # The source grows by two captions: read again, earlier chunks keep their bytes (same digests).
    data = json.loads(paths.captions.read_text())
    extra = [dict(data["annotations"][0], id=10_000 + i, caption=f"An extra caption {i}.") for i in range(2)]
    data["annotations"] += extra
    paths.captions.write_text(json.dumps(data))
    grown_fp = source_fingerprint(files, 25)
    assert grown_fp != fp
    grown = ingest_source(_reader(paths), work, 25, grown_fp)
    assert grown.rows == 62
    assert [chunk_digest(c) for c in grown.chunks[:2]] == digests[:2]
    assert chunk_digest(grown.chunks[2]) != digests[2]


def test_a_different_chunk_size_reingests_and_removes_old_chunks(tmp_path, demo_root):
    paths = demo_paths(demo_root)
    files = {"annotations": str(paths.captions)}
    work = tmp_path / "work"
    ingest_source(_reader(paths), work, 10, source_fingerprint(files, 10))
    result = ingest_source(_reader(paths), work, 30, source_fingerprint(files, 30))
    on_disk = sorted((work / INGEST_DIR / "coco_captions").glob("chunk-*.parquet"))
    assert [str(p) for p in on_disk] == sorted(result.chunks) and len(on_disk) == 2
    assert sum(pl.read_parquet(p).height for p in on_disk) == 60
    assert json.loads((work / INGEST_DIR / "coco_captions" / INGEST_DONE).read_text())["fingerprint"] == \
        source_fingerprint(files, 30)


def test_an_interrupted_ingest_is_redone(tmp_path, demo_root):
    paths = demo_paths(demo_root)
    work = tmp_path / "work"
    fp = source_fingerprint({"annotations": str(paths.captions)}, 25)
    full = ingest_source(_reader(paths), work, 25, fp)
    (work / INGEST_DIR / "coco_captions" / INGEST_DONE).unlink()  # killed before the marker landed
    (work / INGEST_DIR / "coco_captions" / "chunk-00002.parquet").unlink()
    again = ingest_source(_reader(paths), work, 25, fp)
    assert again == full and all(map(lambda c: Path(c).exists(), again.chunks))


def test_iter_quarantine_only_lists_the_given_sources(tmp_path):
    for source in ("a", "b"):
        path = tmp_path / "quarantine" / source / "chunk-00000.parquet"
        path.parent.mkdir(parents=True)
        pl.DataFrame({"x": [1]}).write_parquet(path)
    assert [p.parent.name for p in iter_quarantine(tmp_path)] == ["a", "b"]
    assert [p.parent.name for p in iter_quarantine(tmp_path, ["b"])] == ["b"]
    assert list(iter_quarantine(tmp_path, [])) == []

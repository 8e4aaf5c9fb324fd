"""A source is read again when its files' bytes change, even when an edit keeps the size and restores the
modification time; an unchanged rerun reuses the digests it recorded instead of reading the files again."""

import json
import os
import shutil
import time

import polars as pl

from pipeline.demo.data import demo_paths
from pipeline.ingest import digests
from pipeline.ingest.coco import CocoCaptionsSource
from pipeline.ingest.stage import FILE_DIGESTS, INGEST_DIR, ingest_stage, source_fingerprint


def _edit_keeping_size_and_mtime(path, old: str, new: str):
    assert len(old.encode()) == len(new.encode())
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(old.encode(), new.encode(), 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_an_edit_with_the_same_size_and_mtime_is_read_again(tmp_path, demo_root):
    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    paths = demo_paths(root)
    source = CocoCaptionsSource(annotations=paths.captions, images=paths.images / "train2014")
    work = str(tmp_path / "work")
    first = ingest_stage(source, work, 25)
    assert ingest_stage(source, work, 25) == first  # unchanged: reused
    _edit_keeping_size_and_mtime(paths.captions, "A yellow square", "A purple square")
    again = ingest_stage(source, work, 25)
    assert again.rows == first.rows

    texts = [t for c in again.chunks for t in pl.read_parquet(c)["text_en"].to_list()]
    assert "A purple square on a plain background." in texts  # not the stale rows
    assert "A yellow square on a plain background." not in texts


def test_an_unchanged_rerun_reads_no_source_file(tmp_path, demo_root, monkeypatch):
    source = tmp_path / "captions.json"
    shutil.copy(demo_paths(demo_root).captions, source)
    cache = tmp_path / "work" / FILE_DIGESTS
    files = {"annotations": str(source)}
    hashed = []
    real = digests.hash_file
    monkeypatch.setattr(digests, "hash_file", lambda path: hashed.append(path) or real(path))
    time.sleep(digests.RACY_NS / 1e9 + 0.1)  # the file's last change is now well before it is hashed

    first = source_fingerprint(files, 25, cache=cache)
    assert source_fingerprint(files, 25, cache=cache) == first and len(hashed) == 1  # from the digests' cache
    entry = json.loads(cache.read_text())[str(source)]
    assert entry["trusted"] and entry["digest"].split(":")[0] in ("xxh3_128", "blake2b")
    _edit_keeping_size_and_mtime(source, "A yellow square", "A purple square")
    assert source_fingerprint(files, 25, cache=cache) != first and len(hashed) == 2  # the ctime changed

    # A file changed just before it was hashed may change again unseen: its digest is not reused.
    shutil.copy(demo_paths(demo_root).captions, source)
    source_fingerprint(files, 25, cache=cache)
    assert not json.loads(cache.read_text())[str(source)]["trusted"]
    assert source_fingerprint(files, 25, cache=cache) == first and len(hashed) == 4


def test_the_digests_live_in_the_sources_work_folder(tmp_path, demo_root):
    paths = demo_paths(demo_root)
    ingest_stage(CocoCaptionsSource(annotations=paths.captions, images=paths.images / "train2014"),
                 str(tmp_path / "work"), 25)
    cache = json.loads((tmp_path / "work" / INGEST_DIR / "coco_captions" / FILE_DIGESTS).read_text())
    assert list(cache) == [str(paths.captions)]

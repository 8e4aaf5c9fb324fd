"""The output folder is locked for a run, and work files are found relative to it: a moved or
copied output reads its own chunks; a manifest entry whose row count is wrong is not reused."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.ingest import CocoCaptionsReader
from pipeline.output_dir import LOCK_FILE, OutputLockedError, output_lock
from pipeline.ingest.stage import ingest_source
from pipeline.output_dir import MANIFEST
from pipeline.outputs.shards import ShardLayout, is_intact

REPO = Path(__file__).resolve().parents[2]


def test_second_run_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipeline.output_dir import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockedError, match=rf"another run is writing this output \(pid {holder.pid} on "):
            with output_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the kernel releases the lock of a killed holder
        try:
            with output_lock(tmp_path):
                break
        except OutputLockedError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert (tmp_path / LOCK_FILE).read_text() == ""  # no stale holder text after a release


def test_lock_is_reentrant_in_one_process(tmp_path):
    with output_lock(tmp_path), output_lock(tmp_path / "." ):
        pass


def test_moved_or_copied_work_folder_reads_its_own_chunks(tmp_path):
    ann = tmp_path / "captions_train2014.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                               "annotations": [{"id": i, "image_id": 1, "caption": f"A dog {i}."} for i in range(5)]}))
    first = ingest_source(CocoCaptionsReader(ann), tmp_path / "out1" / "_work", chunk_rows=2, fingerprint="f")
    shutil.copytree(tmp_path / "out1", tmp_path / "copy")
    shutil.move(tmp_path / "out1", tmp_path / "moved")
    for name in ("copy", "moved"):
        again = ingest_source(CocoCaptionsReader(ann), tmp_path / name / "_work", chunk_rows=2, fingerprint="f")
        assert len(again.chunks) == len(first.chunks) == 3
        assert all(Path(c).is_file() and Path(c).is_relative_to(tmp_path / name) for c in again.chunks)


def test_entry_with_a_wrong_row_count_is_not_intact(tmp_path, make_processed):
    from pipeline.outputs.write import write_outputs
    from pipeline.run_record import RunRecord

    paths, counts = make_processed(tmp_path / "_work", n_rows=30)
    out = tmp_path / "out"
    write_outputs(out, paths, [], RunRecord(config_hash="t"), ingest_counts=counts, layout=ShardLayout(15, 0, 5))
    entry = json.loads((out / MANIFEST).read_text())["files"][0]
    assert is_intact(out, entry)
    assert not is_intact(out, {**entry, "rows": entry["rows"] + 1})

"""Publishing a staged output: only changed files move, the manifest goes last, only owned files are deleted."""

import json
import os

from pipeline.outputs.publish import OWNED_FILES, owned_files, publish, select_changed


def _write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_publish_moves_only_changed_files_and_writes_manifest_last(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / "_work" / "staging"
    _write(out, "data/de/part-00000.parquet", "de-v1")
    same = _write(out, "data/fr/part-00000.parquet", "fr-v1")
    _write(out, "data/cs/part-00000.parquet", "cs-v1")  # no longer produced: stale
    _write(out, "manifest.json", json.dumps({"files": [{"path": f"data/{lang}/part-00000.parquet"}
                                                       for lang in ("de", "fr", "cs")]}))
    os.utime(same, ns=(1, 1))
    _write(staging, "data/de/part-00000.parquet", "de-v2")
    _write(staging, "data/fr/part-00000.parquet", "fr-v1")
    _write(staging, "stats.json", "{}")
    _write(staging, "manifest.json", json.dumps({"files": ["new"]}))

    changed, unchanged, stale = select_changed(staging, out)
    assert sorted(changed) == ["data/de/part-00000.parquet", "manifest.json", "stats.json"]
    assert unchanged == ["data/fr/part-00000.parquet"] and stale == ["data/cs/part-00000.parquet"]

    report = publish(staging, out)
    assert (out / "data/de/part-00000.parquet").read_text() == "de-v2"
    assert same.stat().st_mtime_ns == 1  # untouched
    assert not (out / "data/cs/part-00000.parquet").exists()
    assert json.loads((out / "manifest.json").read_text()) == {"files": ["new"]}
    assert not staging.exists() and report.removed == ("data/cs/part-00000.parquet",)


def test_publish_keeps_files_outside_the_output_folders(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "stage"
    _write(out, "notes.txt", "mine")
    _write(out, "_work/processed/x.parquet", "work")
    _write(staging, "manifest.json", "{}")
    publish(staging, out)
    assert (out / "notes.txt").exists() and (out / "_work/processed/x.parquet").exists()


def test_publish_never_deletes_a_file_it_did_not_publish(tmp_path):
    """A file of the user's inside a shard folder is not stale output: only files an earlier manifest
    (or the ownership record of a publish killed midway) lists are removed."""
    out, staging = tmp_path / "out", tmp_path / "out" / "_work" / "staging"
    _write(out, "data/de/part-00000.parquet", "de-v1")
    mine = _write(out, "data/sub/important.csv", "x")
    mine_parquet = _write(out, "data/de/my-notes.parquet", "y")
    _write(out, "manifest.json", json.dumps({"files": [{"path": "data/de/part-00000.parquet"},
                                                       {"path": "../outside.txt"}]}))
    outside = _write(tmp_path, "outside.txt", "z")
    _write(staging, "manifest.json", json.dumps({"files": []}))
    report = publish(staging, out)
    assert report.removed == ("data/de/part-00000.parquet",)
    assert mine.read_text() == "x" and mine_parquet.read_text() == "y" and outside.read_text() == "z"


def test_ownership_survives_a_publish_killed_after_the_manifest_went(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / "_work" / "staging"
    _write(out, "data/de/part-00000.parquet", "de-v1")
    _write(out, "manifest.json", json.dumps({"files": [{"path": "data/de/part-00000.parquet"}]}))
    _write(staging, "data/fr/part-00000.parquet", "fr")
    _write(staging, "manifest.json", json.dumps({"files": [{"path": "data/fr/part-00000.parquet"}]}))
    assert "data/de/part-00000.parquet" in owned_files(out)
    # as a publish killed right after it removed the old manifest leaves it:
    publish_record = sorted(owned_files(out) | {"data/fr/part-00000.parquet", "manifest.json"})
    (out / "manifest.json").unlink()
    _write(out, OWNED_FILES, json.dumps(publish_record))
    report = publish(staging, out)
    assert report.removed == ("data/de/part-00000.parquet",)


def test_identical_staging_touches_nothing_and_a_same_manifest_is_put_back_last(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / "_work" / "staging"
    for root in (out, staging):
        _write(root, "data/de/part-00000.parquet", "de")
        _write(root, "manifest.json", json.dumps({"files": [{"path": "data/de/part-00000.parquet"}]}))
    for rel in ("data/de/part-00000.parquet", "manifest.json"):
        os.utime(out / rel, ns=(1, 1))
    report = publish(staging, out)
    assert report.replaced == () and report.removed == ()
    assert all((out / rel).stat().st_mtime_ns == 1 for rel in ("data/de/part-00000.parquet", "manifest.json"))

    # another file changes, the manifest's bytes do not: it is still removed first and written last
    _write(staging, "data/de/part-00000.parquet", "de")
    _write(staging, "stats.json", "{}")
    _write(staging, "manifest.json", (out / "manifest.json").read_text())
    report = publish(staging, out)
    assert set(report.replaced) == {"stats.json", "manifest.json"}
    assert report.unchanged == ("data/de/part-00000.parquet",)
    assert (out / "manifest.json").stat().st_mtime_ns != 1
    assert (out / "data/de/part-00000.parquet").stat().st_mtime_ns == 1
    assert json.loads((out / OWNED_FILES).read_text()) == ["data/de/part-00000.parquet", "manifest.json", "stats.json"]

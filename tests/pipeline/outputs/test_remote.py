"""Outputs at an fsspec URL, against a real S3-protocol server on 127.0.0.1 (moto): only changed files are
uploaded, the manifest last; a killed publish completes without uploading finished files again; verify."""

import json

import polars as pl
import pytest

from pipeline.outputs.remote import JOURNAL, publish_remote, verify_remote
from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord

RECORD = RunRecord(config_hash="t", sources={"coco_captions": "coco_captions", "vqav2": "vqav2"})


def _build(out, paths, counts, card=True):
    return write_outputs(out, paths, [], RECORD, ingest_counts=counts, layout=ShardLayout(15, 0, 5), card=card)


def _change_language(paths, lang):
    """Every processed chunk with ``lang``'s translations changed (one language's rows differ)."""
    for path in paths:
        frame = pl.read_parquet(path)
        frame = frame.with_columns(pl.when(pl.col("lang") == lang).then(pl.col("text_tgt") + " (v2)")
                                   .otherwise(pl.col("text_tgt")).alias("text_tgt"))
        frame.write_parquet(path)


def test_rerun_uploads_nothing_and_a_language_change_uploads_its_shards(tmp_path, make_processed, s3_server):
    paths, counts = make_processed(tmp_path / "work", n_rows=90)
    out, url = tmp_path / "out", f"s3://{s3_server.bucket()}/mblip/v1"
    bucket = url.split("/")[2]
    _build(out, paths, counts)
    first = publish_remote(out, url)
    local = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and not p.relative_to(out).as_posix().startswith("_work/"))
    assert sorted(first.uploaded) == local and first.uploaded[-1] == "manifest.json"
    assert s3_server.fs.cat_file(f"{url}/manifest.json") == (out / "manifest.json").read_bytes()

    s3_server.log.clear()
    _build(out, paths, counts)
    again = publish_remote(out, url)
    assert again.uploaded == () and sorted(again.unchanged) == local
    assert s3_server.requests("PUT", bucket) == 0 and s3_server.requests("DELETE", bucket) == 0

    _change_language(paths, "de")
    _build(out, paths, counts)
    s3_server.log.clear()
    changed = publish_remote(out, url)
    de = {p for p in changed.uploaded if p.startswith(("data/de/", "rejects/de/"))}
    assert de and not [p for p in changed.uploaded if p.startswith(("data/", "rejects/")) and p not in de]
    assert changed.uploaded[-1] == "manifest.json"
    assert s3_server.requests("PUT", bucket) == len(changed.uploaded)
    print(json.dumps({"files": len(local), "first_publish": len(first.uploaded), "unchanged_rerun": len(again.uploaded),
                      "one_language_change": len(changed.uploaded), "uploaded": changed.uploaded}))
    assert verify_remote(url).ok


def test_a_killed_publish_completes_without_uploading_finished_files_again(tmp_path, make_processed, s3_server):
    paths, counts = make_processed(tmp_path / "work", n_rows=90)
    out, url = tmp_path / "out", f"s3://{s3_server.bucket()}/out"
    _build(out, paths, counts, card=False)
    done = []

    def die_after_two(rel):
        done.append(rel)
        if len(done) == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        publish_remote(out, url, after_upload=die_after_two)
    assert not s3_server.fs.exists(f"{url}/manifest.json")  # a reader sees an incomplete output, not a mix
    assert not verify_remote(url).ok
    assert set(json.loads((out / JOURNAL).read_text())["files"]) == set(done)

    rest = publish_remote(out, url)
    assert not set(rest.uploaded) & set(done) and set(rest.unchanged) >= set(done)
    assert rest.uploaded[-1] == "manifest.json"
    assert verify_remote(url).ok


def test_stale_remote_files_are_removed_and_verify_sees_damage(tmp_path, make_processed, s3_server):
    paths, counts = make_processed(tmp_path / "work", n_rows=90)
    out, url = tmp_path / "out", f"s3://{s3_server.bucket()}/out"
    _build(out, paths, counts, card=False)
    publish_remote(out, url)
    s3_server.fs.pipe_file(f"{url}/notes.txt", b"the user's own file")
    _build(out, [p for p in paths if "vqav2" not in str(p)], {"coco_captions": counts["coco_captions"]}, card=False)
    report = publish_remote(out, url)
    assert report.removed and all(s3_server.fs.exists(f"{url}/{p}") is False for p in report.removed)
    assert s3_server.fs.exists(f"{url}/notes.txt")  # never published by this tool: never deleted
    assert verify_remote(url).ok

    shard = next(p for p in report.unchanged if p.endswith(".parquet"))
    s3_server.fs.pipe_file(f"{url}/{shard}", b"damaged")
    problems = verify_remote(url).problems
    assert any(shard in p for p in problems)

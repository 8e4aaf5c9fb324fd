"""Final shards: layout, determinism, size targets, resume from group records, publish, crash safety."""

import json
import os

import polars as pl
import pyarrow.parquet as pq
import pytest

import pipeline.outputs.publish as publish
import pipeline.outputs.shards as shard
from pipeline.io import sha256_file
from pipeline.output_dir import MANIFEST
from pipeline.outputs.publish import STAGING_DIR
from pipeline.outputs.shards import GROUP_RECORDS, ShardLayout
from pipeline.outputs.sort import id_ranges
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord
from pipeline.verify import verify_output

META = RunRecord(config_hash="test", sources={"coco_captions": "coco_captions", "vqav2": "vqav2"})


def _write(out, paths, counts, shard_rows=10, row_group_rows=4, card=False, shard_bytes=0, **kw):
    layout = ShardLayout(shard_rows, shard_bytes, row_group_rows)
    return write_outputs(out, paths, [], META, ingest_counts=counts, layout=layout, card=card, **kw)


def _groups(manifest):
    """Group record name -> the manifest entries of that group."""
    out = {}
    for f in manifest["files"]:
        out.setdefault(f"{f['split']}-{f['lang']}" if f["lang"] else f["split"], []).append(f)
    return out


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / GROUP_RECORDS).glob("*.json"))}


def _stamps(out):
    """Every file of the published output (not the work folder): path -> (inode, mtime, bytes)."""
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(out.rglob("*")) if p.is_file() and "_work" not in p.relative_to(out).parts}


def _digests(out, manifest):
    return {f["path"]: sha256_file(out / f["path"]) for f in manifest["files"]}


def test_layout_per_language_zero_padded_and_sorted(tmp_path, make_processed):
    paths, counts = make_processed(tmp_path / "_work", n_rows=90, langs=("de", "fr", "iw"))
    out = tmp_path / "out"
    manifest = _write(out, paths, counts)
    kept = [f for f in manifest["files"] if f["split"] == "kept"]
    assert {f["lang"] for f in kept} == {"de", "fr", "iw"}
    assert {f["path"] for f in kept if f["lang"] == "de"} == {
        f"data/de/part-{i:05d}.parquet" for i in range(-(-pl.read_parquet(paths).filter(
            (pl.col("lang") == "de") & (pl.col("status") == "kept")).height // 10))}
    assert all(f["rows"] <= 10 for f in manifest["files"])
    de = pl.read_parquet(out / "data/de/*.parquet")
    assert de["lang"].unique().to_list() == ["de"] and de["status"].unique().to_list() == ["kept"]
    assert de["example_id"].to_list() == sorted(de["example_id"].to_list())
    for lang in ("de", "fr", "iw"):
        rejects = pl.read_parquet(out / f"rejects/{lang}/*.parquet")
        assert rejects["lang"].unique().to_list() == [lang] and rejects["status"].unique().to_list() == ["rejected"]
        assert rejects["example_id"].to_list() == sorted(rejects["example_id"].to_list())
    assert not (out / "_work" / "spill").exists() and not (out / STAGING_DIR).exists()
    meta = pq.read_metadata(out / "data/de/part-00000.parquet")
    assert meta.num_rows == 10 and meta.num_row_groups == 3  # row groups of 4 rows
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert not (out / "quarantine").exists()  # no quarantined records: no empty shard
    n_kept = pl.read_parquet(paths).filter(pl.col("status") == "kept").height
    assert manifest["totals"]["kept"] == sum(f["rows"] for f in kept) == n_kept > 0


def test_same_inputs_give_identical_shards(tmp_path, make_processed, same_output):
    paths, counts = make_processed(tmp_path / "_work", n_rows=60)
    a = _write(tmp_path / "a", paths, counts)
    b = _write(tmp_path / "b", list(reversed(paths)), counts)  # input order does not matter
    same_output(tmp_path / "b", tmp_path / "a")
    assert [f["path"] for f in a["files"]] == [f["path"] for f in b["files"]]


def test_output_does_not_depend_on_the_sort_bucket_size(tmp_path, make_processed, same_output):
    """Languages are sorted in bounded buckets of example_id ranges; concatenated, they must give the
    bytes of one whole sort, for any bucket size and shard layout."""
    paths, counts = make_processed(tmp_path / "_work", n_rows=200, langs=("de", "fr"), chunks=5)
    for shard_rows, row_group_rows in ((10_000, 7), (30, 8)):  # one shard per language; shards across buckets
        whole = _write(tmp_path / f"whole-{shard_rows}", paths, counts, shard_rows, row_group_rows)
        for bucket_rows in (2, 13):  # two rows per bucket, uneven buckets
            out = tmp_path / f"b{bucket_rows}-{shard_rows}"
            bucketed = _write(out, paths, counts, shard_rows, row_group_rows, sort_bucket_rows=bucket_rows)
            assert bucketed["files"] == whole["files"]
            same_output(out, tmp_path / f"whole-{shard_rows}")
    # the reference is the old in-memory path: one frame per language, sorted, sliced and written whole
    fr = pl.read_parquet(paths).filter((pl.col("lang") == "fr") & (pl.col("status") == "kept")).sort("example_id")
    fr.slice(30, 30).write_parquet(tmp_path / "ref.parquet", compression="zstd", row_group_size=8, statistics=True)
    assert sha256_file(tmp_path / "ref.parquet") == sha256_file(tmp_path / "b13-30/data/fr/part-00001.parquet")


def test_id_ranges_split_any_ids_in_sort_order():
    ids = pl.Series("example_id", ["0000", "00", "7fff", "8000", "ffff", "fffff1", "Z", "", None, "a1b2", "~"])
    frame = ids.to_frame()
    for n in (1, 2, 3, 16, 100):
        pieces = [frame.filter(keep)["example_id"].sort().to_list() for keep in id_ranges(n)]
        assert sum(pieces, []) == frame["example_id"].sort().to_list()  # each id once, ranges in order


def test_shard_bytes_target_cuts_smaller_shards(tmp_path, make_processed):
    paths, counts = make_processed(tmp_path / "_work", n_rows=120, langs=("de",))
    frame = pl.read_parquet(paths).filter(pl.col("status") == "kept")
    row_bytes = frame.estimated_size() / frame.height
    layout = ShardLayout(shard_rows=1000, shard_bytes=int(row_bytes * 25), row_group_rows=10)
    per_shard = layout.rows_for(frame.height, frame.estimated_size())
    assert 20 <= per_shard <= 25
    manifest = _write(tmp_path / "out", paths, counts, shard_rows=1000, shard_bytes=int(row_bytes * 25))
    de = [f["rows"] for f in manifest["files"] if f["lang"] == "de" and f["split"] == "kept"]
    assert len(de) == -(-frame.height // per_shard) and sum(de) == frame.height
    assert ShardLayout(shard_rows=7).rows_for(frame.height, frame.estimated_size()) == 7  # bytes target off


def test_rerun_reuses_recorded_groups_and_rewrites_a_corrupt_shard(tmp_path, make_processed):
    paths, counts = make_processed(tmp_path / "_work", n_rows=60)
    out = tmp_path / "out"
    first = _write(out, paths, counts)
    records = _records(out)
    assert {k: r["files"] for k, r in records.items()} == {**_groups(first), "quarantine": []}
    assert {r["inputs_fingerprint"] for r in records.values()} == {first["inputs_fingerprint"]}
    mtimes = {f["path"]: os.stat(out / f["path"]).st_mtime_ns for f in first["files"]}
    victim = out / first["files"][0]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert not verify_output(out).ok

    done = []
    second = _write(out, paths, counts, on_group_done=lambda group, reused: done.append((group, reused)))
    assert second["files"] == first["files"]  # rewritten with the same bytes
    assert verify_output(out).ok
    changed = [p for p, m in mtimes.items() if os.stat(out / p).st_mtime_ns != m]
    assert changed == [first["files"][0]["path"]]
    victim_group = first["files"][0]["path"].rsplit("/", 1)[0]
    assert [g for g, reused in done if not reused] == [victim_group]  # every other group was reused
    assert len(done) == len(records)


def test_unchanged_rerun_rewrites_nothing(tmp_path, make_processed):
    paths, counts = make_processed(tmp_path / "_work", n_rows=60)
    out = tmp_path / "out"
    first = _write(out, paths, counts, card=True)
    before = _stamps(out)
    assert {"manifest.json", "stats.json", "README.md"} <= set(before)
    written = []
    again = write_outputs(out, paths, [], META, ingest_counts=counts, layout=ShardLayout(10, 0, 4),
                          on_group_done=lambda group, reused: written.append(group) if not reused else None)
    assert written == [] and again == first  # the manifest keeps its creation time
    assert _stamps(out) == before  # no file's inode, mtime or bytes changed


def test_changed_inputs_rewrite_and_remove_stale_shards(tmp_path, make_processed):
    paths, counts = make_processed(tmp_path / "_work", n_rows=60, langs=("de", "fr"))
    out = tmp_path / "out"
    _write(out, paths, counts)
    paths2, counts2 = make_processed(tmp_path / "_work2", n_rows=30, langs=("de",), seed=1)
    manifest = _write(out, paths2, counts2)
    assert not (out / "data" / "fr").exists()
    assert {f["lang"] for f in manifest["files"] if f["split"] == "kept"} == {"de"}
    assert verify_output(out).ok
    # records of the earlier inputs are gone; one record per group of these inputs
    assert set(_records(out)) == {*_groups(manifest), "quarantine"}
    assert {r["inputs_fingerprint"] for r in _records(out).values()} == {manifest["inputs_fingerprint"]}


class _Killed(BaseException):
    """Stands for the process dying (SIGKILL, power loss) in the middle of the run."""


def test_killed_write_keeps_the_published_output_and_resumes(tmp_path, make_processed, monkeypatch, same_output):
    paths, counts = make_processed(tmp_path / "_work", n_rows=60)
    out = tmp_path / "out"
    _write(out, paths, counts)
    published = _stamps(out)
    paths2, counts2 = make_processed(tmp_path / "_work2", n_rows=80, seed=1)

    real = shard.sink_parquet_atomic
    calls = {"n": 0}

    def dying_write(frame, path, row_group_rows):
        calls["n"] += 1
        if calls["n"] == 4:  # dies while writing the fourth shard: a temporary file is left behind
            (path.parent / f".{path.name}.tmp-99999").write_bytes(b"PAR1 half written")
            raise _Killed()
        return real(frame, path, row_group_rows)

    monkeypatch.setattr(shard, "sink_parquet_atomic", dying_write)
    with pytest.raises(_Killed):
        _write(out, paths2, counts2)
    # shards go to staging: the published output is the previous one, untouched and complete
    assert _stamps(out) == published and verify_output(out).ok
    recorded = _records(out)  # the groups finished before the kill (of the new inputs only)
    assert recorded and sum(len(r["files"]) for r in recorded.values()) < 4

    written = []
    monkeypatch.setattr(shard, "sink_parquet_atomic",
                        lambda frame, path, row_group_rows: written.append(path) or real(frame, path, row_group_rows))
    manifest = _write(out, paths2, counts2)
    report = verify_output(out)
    assert report.ok and not any(".tmp-" in w for w in report.warnings)
    assert not list(out.rglob(".*.tmp-*"))  # the killed write's temporary file is removed
    reused = sum(len(r["files"]) for r in recorded.values())
    assert len(written) == len(manifest["files"]) - reused  # the groups finished before the kill are reused
    _write(tmp_path / "fresh", paths2, counts2)
    same_output(out, tmp_path / "fresh")


def test_killed_publish_resumes_from_staging_and_the_published_folder(tmp_path, make_processed, monkeypatch):
    """A kill after some files moved out of staging: the rerun finds each recorded group's files in
    staging or in the output folder, writes no shard again, and ends with a clean run's output."""
    paths, counts = make_processed(tmp_path / "_work", n_rows=60)
    out = tmp_path / "out"
    _write(out, paths, counts, card=True)
    paths2, counts2 = make_processed(tmp_path / "_work2", n_rows=80, langs=("de", "fr"), seed=1)

    real = publish._move
    moves = []

    def dying_move(src, dst):
        if len(moves) == 4:
            raise _Killed()
        moves.append(dst)
        real(src, dst)

    monkeypatch.setattr(publish, "_move", dying_move)
    with pytest.raises(_Killed):
        _write(out, paths2, counts2, card=True)
    monkeypatch.setattr(publish, "_move", real)
    assert not (out / MANIFEST).exists()  # removed before the first file moved
    staged = {p.relative_to(out / STAGING_DIR).as_posix() for p in (out / STAGING_DIR).rglob("*.parquet")}
    moved = {m.relative_to(out).as_posix() for m in moves}
    split = {p.rsplit("/", 1)[0] for p in staged} & {m.rsplit("/", 1)[0] for m in moved}
    assert split  # a group with files both still in staging and already published

    done = []
    manifest = _write(out, paths2, counts2, card=True, on_group_done=lambda group, reused: done.append(reused))
    assert done and all(done)  # every group reused: no shard written again
    assert verify_output(out).ok and not (out / STAGING_DIR).exists()
    fresh = _write(tmp_path / "fresh", paths2, counts2, card=True)
    assert _digests(out, manifest) == _digests(tmp_path / "fresh", fresh)
    assert {p: v[2] for p, v in _stamps(out).items() if p != MANIFEST} == \
        {p: v[2] for p, v in _stamps(tmp_path / "fresh").items() if p != MANIFEST}
    assert not (out / "data" / "iw").exists()  # a language of the first inputs only: removed as stale


def test_sidecar_counters_are_summed_into_stats(tmp_path, make_processed):
    from pipeline.translate import TranslationStats, write_stats_sidecar

    paths, counts = make_processed(tmp_path / "_work", n_rows=40)
    for i, p in enumerate(paths[1:]):  # the first chunk predates sidecars
        stats = TranslationStats(requested=10 + i, distinct=5, cache_hits=i, translated=5 - min(i, 5),
                                 decoded_tokens=100)
        write_stats_sidecar(p, stats, {"de": {"kept": 10, "dropped_contains_english": 1 + (i == 1)}})
    # not a chunk of this run
    (paths[0].parent / "chunk-99999.stats.json").write_text('{"translation": {"requested": 1000}}')
    out = tmp_path / "out"
    _write(out, paths, counts)
    processing = json.loads((out / "stats.json").read_text())["processing"]
    n = len(paths) - 1
    assert processing["sidecars"] == n and processing["chunks_without_sidecar"] == 1
    t = processing["translation"]
    assert t["requested"] == sum(10 + i for i in range(n)) and t["distinct"] == 5 * n
    assert t["dedup_factor"] == pytest.approx(t["requested"] / t["distinct"], abs=1e-4)
    assert t["cache_hit_rate"] == pytest.approx(sum(range(n)) / (5 * n), abs=1e-4)
    assert processing["templates"] == {"de": {"kept": 10, "dropped_contains_english": 2}}


_WRITER = """
import json, os, signal, sys
from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord
args = json.loads(sys.argv[1])
def die(group, reused):  # right after the first group is complete and recorded
    os.kill(os.getpid(), signal.SIGKILL)
write_outputs(args["out"], args["paths"], [], RunRecord(config_hash="t"), ingest_counts=args["counts"],
              layout=ShardLayout(1, 0, 1), card=False, on_group_done=die)
"""


def test_sigkill_after_a_group_resumes_from_its_record(tmp_path, make_processed, same_output):
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    paths, counts = make_processed(tmp_path / "_work", n_rows=40)
    _write(out, paths, counts)
    published = _stamps(out)
    paths2, counts2 = make_processed(tmp_path / "_work2", n_rows=60, seed=1)
    args = json.dumps({"out": str(out), "paths": [str(p) for p in paths2], "counts": counts2})
    proc = subprocess.run([sys.executable, "-c", _WRITER, args], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert _stamps(out) == published and verify_output(out).ok  # the published output is untouched
    (recorded,) = _records(out).values()  # exactly the first group, recorded before the kill
    assert recorded["files"] and all(shard.is_intact(out / STAGING_DIR, f) for f in recorded["files"])

    done = []
    manifest = _write(out, paths2, counts2, shard_rows=1, row_group_rows=1,
                      on_group_done=lambda group, reused: done.append(reused))
    assert done.count(True) == 1 and done[0] is True and done.count(False) == len(done) - 1
    assert verify_output(out).ok and manifest["totals"]["kept"] + manifest["totals"]["rejected"] == 60
    _write(tmp_path / "fresh", paths2, counts2, shard_rows=1, row_group_rows=1)
    same_output(out, tmp_path / "fresh")

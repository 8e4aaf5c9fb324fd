"""`mblip verify`: recomputed checksums and counts against the manifest, non-zero exit on any mismatch."""

import json
import shutil

import pytest

from mblip.cli import main
from pipeline.output_dir import MANIFEST, RESOLVED_CONFIG
from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord
from pipeline.verify import verify_output


@pytest.fixture(scope="module")
def clean_output(tmp_path_factory, make_processed):
    tmp = tmp_path_factory.mktemp("verify")
    paths, counts = make_processed(tmp / "_work", n_rows=40)
    out = tmp / "out"
    write_outputs(out, paths, [], RunRecord(config_hash="t"), ingest_counts=counts, layout=ShardLayout(15, 0, 5))
    return out


@pytest.fixture()
def out(clean_output, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(clean_output, copy)
    return copy


def _flip_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_clean_output_verifies(out, capsys):
    assert main(["verify", str(out)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")


def test_flipped_byte_in_a_shard_fails(out, capsys):
    manifest = json.loads((out / MANIFEST).read_text())
    shard = out / manifest["files"][1]["path"]
    _flip_byte(shard)
    assert main(["verify", str(out)]) == 1
    printed = capsys.readouterr().out
    assert f"PROBLEM {manifest['files'][1]['path']}: sha256" in printed


def test_flipped_byte_in_the_card_fails(out):
    _flip_byte(out / "README.md", offset=10)
    report = verify_output(out)
    assert report.problems[0].startswith("README.md: sha256")
    assert all(p.startswith("README.md") for p in report.problems)


def test_missing_truncated_and_stray_files_fail(out):
    manifest = json.loads((out / MANIFEST).read_text())
    kept = [f for f in manifest["files"] if f["split"] == "kept"]
    (out / kept[0]["path"]).unlink()
    (out / kept[1]["path"]).write_bytes((out / kept[1]["path"]).read_bytes()[:100])
    shutil.copyfile(out / kept[2]["path"], out / "data" / kept[2]["lang"] / "part-00099.parquet")
    problems = "\n".join(verify_output(out).problems)
    assert f"{kept[0]['path']}: missing" in problems
    assert f"{kept[1]['path']}: 100 bytes" in problems and "unreadable Parquet" in problems
    assert "part-00099.parquet: Parquet file not certified" in problems
    assert "totals.kept" in problems


def test_any_file_the_manifest_does_not_list_in_a_shard_folder_fails(out):
    """Not only stray Parquet: any file in data/, rejects/ or quarantine/ is outside what the manifest certifies."""
    strays = ["data/de/notes.csv", "data/sub/important.txt", "rejects/fr/.DS_Store", "quarantine/extra/x.json"]
    for rel in strays:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("mine")
    (out / "data/de/.part-00000.parquet.tmp-4242").write_bytes(b"PAR1 half written")
    (out / "notes.txt").write_text("outside the shard folders: not the manifest's business")
    report = verify_output(out)
    assert sorted(report.problems) == sorted(f"{rel}: file not certified by the manifest (stale or foreign)"
                                             for rel in strays)
    assert [w for w in report.warnings if ".tmp-" in w] == [
        "data/de/.part-00000.parquet.tmp-4242: temporary file of an interrupted write (removed by the next run)"]


def test_row_count_mismatch_fails_even_with_matching_checksum(out):
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"][0]["rows"] += 1
    (out / MANIFEST).write_text(json.dumps(manifest))
    problems = verify_output(out).problems
    assert any(p.startswith(f"{manifest['files'][0]['path']}: ") and "rows, manifest says" in p for p in problems)


def test_no_manifest_means_incomplete(out):
    (out / MANIFEST).unlink()
    report = verify_output(out)
    assert not report.ok and "missing" in report.problems[0]


def test_card_configs_must_match_certified_shards(out):
    card = (out / "README.md").read_text()
    (out / "README.md").write_text(card.replace("path: data/de/*.parquet", "path: data/xx/*.parquet"))
    problems = verify_output(out).problems
    assert any("config 'de': data/xx/*.parquet matches no file" in p for p in problems)
    assert any(p.startswith("README.md: sha256") for p in problems)


def test_stats_that_lose_rows_fail(out):
    stats = json.loads((out / "stats.json").read_text())
    name = next(iter(stats["sources"]))
    stats["sources"][name]["kept"] -= 1
    (out / "stats.json").write_text(json.dumps(stats))
    problems = verify_output(out).problems
    assert any(p.startswith(f"source {name}: ") and "do not add up" in p for p in problems)


@pytest.mark.parametrize("manifest, problem", [
    ([], "expected a JSON object, got list"),
    ({"files": [{}]}, "files[0]: expected an object with a 'path' string"),
    ({"files": {"path": "x"}}, "files is a dict, not a list"),
    ({"files": ["data/x.parquet"]}, "files[0]: expected an object"),
    ({"files": [{"path": "../outside.parquet", "rows": 1}]}, "leaves the output folder"),
    ({"files": [{"path": "/etc/passwd"}]}, "leaves the output folder"),
    ({"meta_files": [{"path": "data/../../x"}]}, "leaves the output folder"),
    ({"totals": []}, "totals is a list"),
], ids=["list", "empty-entry", "files-object", "entry-string", "dotdot", "absolute", "meta-dotdot", "totals"])
def test_malformed_manifest_is_reported_not_a_traceback(out, capsys, manifest, problem):
    (out.parent / "outside.parquet").write_bytes(b"PAR1")
    (out / MANIFEST).write_text(json.dumps(manifest))
    report = verify_output(out)
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems
    assert main(["verify", str(out)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_symlink_out_of_the_output_is_refused(out):
    manifest = json.loads((out / MANIFEST).read_text())
    (out.parent / "elsewhere").mkdir()
    (out / "data" / "link").symlink_to(out.parent / "elsewhere")
    manifest["files"].append({"path": "data/link/part.parquet", "rows": 0, "bytes": 0, "sha256": ""})
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert any("resolves outside the output folder" in p for p in verify_output(out).problems)


def test_an_edited_resolved_config_fails(tmp_path, make_processed):
    paths, counts = make_processed(tmp_path / "_work", n_rows=10)
    out = tmp_path / "out"
    manifest = write_outputs(out, paths, [], RunRecord(config_hash="t"), ingest_counts=counts,
                             extra_files={RESOLVED_CONFIG: "run:\n  seed: 0\n"})
    assert RESOLVED_CONFIG in {f["path"] for f in manifest["meta_files"]}
    assert verify_output(out).ok
    (out / RESOLVED_CONFIG).write_text("run:\n  seed: 1\n")  # same size, other bytes
    assert any(p.startswith(f"{RESOLVED_CONFIG}: sha256") for p in verify_output(out).problems)

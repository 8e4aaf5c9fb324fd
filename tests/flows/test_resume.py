"""A real ``mblip generate`` killed at every stage, with SIGKILL and with SIGTERM: while a source is read,
between chunks, while the shards are written and during the publish. Each rerun of the same command
picks up where the last one died, finished work is not redone, and the last rerun ends with exactly the
output of an uninterrupted run, byte for byte.

The run kills itself at the named point (``MBLIP_KILL_AT``, ``pipeline/kill_points.py``): no polling and
no sleeps, so the kill lands at the same place on a busy machine. The runs are chained (each kill is the
next rerun's starting point), so eight kills cost about one run plus eight process starts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flows.generate import generate
from pipeline.kill_points import KILL_AT_ENV, KILL_POINTS
from pipeline.output_dir import MANIFEST

REPO = Path(__file__).resolve().parents[2]
SIGNALS = {"KILL": -signal.SIGKILL, "TERM": 128 + signal.SIGTERM}  # signal -> the killed process's return code


def _files(root: Path, pattern: str = "*.parquet") -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if not p.name.startswith(".")) if root.exists() else []


def _stamps(paths) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


def _published(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
                  and p.relative_to(out).parts[0] != "_work")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, demo_config_in, prefect_server):
    """A demo config (5 chunks of 20 rows, one chunk at a time) and the output of an uninterrupted run of it,
    set aside so the killed runs write at the same path."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    root = tmp_path_factory.mktemp("kills")
    out = root / "dataset"
    config = demo_config_in(root, chunk_rows=20, output={"dir": str(out)}, run={"concurrency": 1})
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"], PREFECT_HOME: str(root / "home")}):
        generate(str(config))
    return {"config": config, "out": out, "reference": out.rename(root / "reference")}


def _run_killed(config: Path, point: str, sig: str, server: dict, home: Path) -> None:
    """``mblip generate CONFIG`` in a new process that kills itself with ``sig`` at ``point``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=server["url"], PREFECT_HOME=str(home), PYTHONPATH=str(REPO),
               **{KILL_AT_ENV: f"{point}:{sig}"})
    proc = subprocess.run([sys.executable, "-m", "mblip.cli", "generate", str(config)], cwd=REPO, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=240)
    assert proc.returncode == SIGNALS[sig], \
        f"killed at {point} with SIG{sig}: exit {proc.returncode}\n{proc.stderr.decode()[-3000:]}"


@pytest.mark.parametrize("sig", list(SIGNALS))
def test_killed_at_every_stage_resumes_to_the_same_output(sig, workspace, prefect_server, prefect_api, same_output,
                                                          tmp_path):
    config, out = workspace["config"], workspace["out"]
    shutil.rmtree(out, ignore_errors=True)
    work = out / "_work"
    assert KILL_POINTS == ("ingest", "chunks", "shards", "publish")

    def kill_at(point: str) -> None:
        _run_killed(config, point, sig, prefect_server, tmp_path / "home")
        assert not (out / MANIFEST).exists()  # never complete before the end of the last run

    kill_at("ingest")  # a source's first chunk is on disk, its ingest unfinished
    unfinished = [d for d in (work / "ingest").iterdir() if not (d / "_INGESTED.json").exists()]
    assert unfinished and any(_files(d) for d in unfinished)  # (a source's folder may hold only its digests)
    assert not _files(work / "processed")

    kill_at("chunks")  # one chunk processed, four not
    done_before = _stamps(_files(work / "processed"))
    assert len(done_before) == 1

    kill_at("shards")  # all chunks processed; one shard group complete in staging, none published
    assert len(_files(work / "processed")) == 5 and not _published(out)
    (record,) = (work / "shard-groups").glob("*.json")
    group = [work / "staging" / f["path"] for f in json.loads(record.read_text())["files"]]
    written_before = _stamps(group)

    kill_at("publish")  # one file moved into the output, the manifest not written
    assert len(_published(out)) == 1

    manifest = generate(str(config))
    same_output(out, workspace["reference"])
    assert manifest["run"]["chunks"]["done"] == 5  # every chunk was finished by a killed run, none redone
    assert _stamps(done_before) == done_before
    moved = {out / p.relative_to(work / "staging"): stamp for p, stamp in written_before.items()}
    assert _stamps(moved) == moved  # the shard group written before the kill was moved in, never rewritten
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]  # no half-written file left behind

"""A real ``generate`` run killed with SIGKILL at several points, then rerun: the output is exactly that
of an uninterrupted run, and chunks finished before the kill are not recomputed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.generate import generate

REPO = Path(__file__).resolve().parents[2]


def _files(root: Path, pattern: str = "*.parquet") -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if not p.name.startswith(".")) if root.exists() else []


KILL_POINTS = {
    # while a source is being read (first English chunk on disk)
    "ingest": lambda out: _files(out / "_work" / "ingest"),
    # with some chunks translated and others not
    "chunks": lambda out: len(_files(out / "_work" / "processed")) >= 3,
    # while the shards are being written
    "shards": lambda out: _files(out / "_work" / "staging") or (out / "_work" / "staging").exists(),
}


def _start(config: Path, server: dict, tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=server["url"], PREFECT_HOME=str(tmp_path / "client-home"), PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "flows.generate", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode()[-3000:]
            pytest.fail(f"run ended (rc {proc.returncode}) before the kill point:\n{stderr}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("kill point not reached in time")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def _check_resume(point, tmp_path, demo_config, prefect_server, output_digest, reference):
    out = tmp_path / f"killed-{point}"
    config = demo_config(name=f"{point}.yaml", chunk_rows=8, output={"dir": str(out)}, run={"concurrency": 1})
    proc = _start(config, prefect_server, tmp_path)
    _kill_when(proc, lambda: KILL_POINTS[point](out))
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in _files(out / "_work" / "processed")}

    manifest = generate(str(config))

    assert output_digest(out) == reference
    # Chunks finished before the kill were reused, not recomputed.
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())
    assert manifest["run"]["chunks"]["done"] >= len(finished)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]  # no half-written files left behind


@pytest.fixture()
def reference(tmp_path, demo_config, prefect_api, output_digest):
    """The output of an uninterrupted run of the same config."""
    out = tmp_path / "reference"
    generate(str(demo_config(name="reference.yaml", chunk_rows=8, output={"dir": str(out)}, run={"concurrency": 1})))
    return output_digest(out)


def test_killed_between_chunks_resumes_to_the_same_output(tmp_path, demo_config, prefect_server, prefect_api,
                                                          output_digest, reference):
    _check_resume("chunks", tmp_path, demo_config, prefect_server, output_digest, reference)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["ingest", "shards"])
def test_killed_elsewhere_resumes_to_the_same_output(point, tmp_path, demo_config, prefect_server, prefect_api,
                                                     output_digest, reference):
    _check_resume(point, tmp_path, demo_config, prefect_server, output_digest, reference)

"""The memory benchmark measures the run's own process, not the process that started it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

CHILD = "from flows.bench.memory import peak_rss_kib; print(peak_rss_kib())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status")
def test_a_child_reports_its_own_peak_not_its_parents():
    ballast = bytearray(400 * 1024 * 1024)  # resident: zero-filled by bytearray
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, check=True)
    child_mib = int(out.stdout) / 1024
    assert child_mib < 200, child_mib  # ru_maxrss would say 400+ here: it counts the parent before exec
    del ballast


def test_the_peak_follows_what_the_process_itself_touches():
    script = CHILD + "\nb = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])\n" + CHILD
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    before, after = (int(x) / 1024 for x in out.stdout.split())
    assert after - before > 250, (before, after)

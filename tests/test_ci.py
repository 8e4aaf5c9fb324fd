"""What CI runs (`make test`, called by .ci/run): every test under a timeout, a longer one for tests marked
slow, and the slowest tests listed in the log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_REPORT_TIMEOUTS = '''
def pytest_collection_finish(session):
    for item in session.items:
        marker = item.get_closest_marker("timeout")
        slow = item.get_closest_marker("slow") is not None
        print("TIMEOUT", item.nodeid, slow, marker.args[0] if marker else None)
'''


def test_every_test_runs_under_a_timeout(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert float(pytestconfig.getini("timeout")) >= 60


def test_slow_tests_get_a_longer_timeout_unless_they_name_one(tmp_path):
    (tmp_path / "report_timeouts.py").write_text(_REPORT_TIMEOUTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "report_timeouts",
         "-m", "slow or not slow", "tests/pipeline/filters/test_evaluate.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    found = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("TIMEOUT ")]
    slow = [float(timeout) for _, is_slow, timeout in found if is_slow == "True"]
    assert slow and all(t > 300 for t in slow)
    assert all(timeout == "None" for _, is_slow, timeout in found if is_slow == "False")  # the ini's timeout applies


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_lists_the_slowest_tests():
    commands = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    (pytest_line,) = [line for line in commands.splitlines() if " -m pytest" in line]
    assert "--durations=15" in pytest_line.split()


_FAKE_APT = """#!/bin/sh
echo "$@" >> "$APT_LOG"
"""
_FAKE_SUDO = """#!/bin/sh
[ "$1" = "-n" ] && shift
exec "$@"
"""


def _fake_bin(tmp_path: Path, names: dict[str, str]) -> Path:
    """A PATH folder holding ``env`` and ``id`` (the real ones) and the given scripts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for real in ("env", "id"):
        (bin_dir / real).symlink_to(shutil.which(real))
    for name, script in names.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return bin_dir


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_installs_the_browser_the_browser_test_drives(tmp_path):
    commands = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = commands.splitlines()
    install = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    assert "chromium chromium-driver" in lines[install]
    assert install < next(i for i, line in enumerate(lines) if " -m pytest" in line)

    # where they are missing, the set-up asks apt-get for both (through sudo -n when not root) ...
    log = tmp_path / "apt.log"
    env = {"PATH": str(_fake_bin(tmp_path, {"apt-get": _FAKE_APT, "sudo": _FAKE_SUDO})), "APT_LOG": str(log)}
    make = shutil.which("make")
    subprocess.run([make, "-s", "browser"], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq chromium chromium-driver"]
    # ... and where they are installed, it installs nothing
    (tmp_path / "bin" / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "chromedriver").write_text("#!/bin/sh\n")
    for name in ("chromium", "chromedriver"):
        (tmp_path / "bin" / name).chmod(0o755)
    log.unlink()
    subprocess.run([make, "-s", "browser"], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert not log.exists()

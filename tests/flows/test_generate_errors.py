"""``mblip generate`` refuses an output path that is a file with one ``error:`` line, exit 2, before
the embedded Prefect server starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _mblip(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(REPO), PREFECT_HOME=str(Path(cwd) / "prefect-home"))
    return subprocess.run([sys.executable, "-m", "mblip.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("make_out", [
    lambda tmp: (tmp / "out.txt").write_text("x") and tmp / "out.txt",
    lambda tmp: (tmp / "f").write_text("x") and tmp / "f" / "sub",
], ids=["output-is-a-file", "parent-is-a-file"])
def test_output_that_is_a_file_is_one_error_line_before_prefect_starts(tmp_path, demo_config, make_out):
    out = make_out(tmp_path)
    result = _mblip("generate", str(demo_config()), "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "is a file" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert "temporary server" not in result.stderr.lower()  # failed before the embedded server started

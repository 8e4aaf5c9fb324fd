"""Operating-system errors end in one ``error:`` line naming the path and the cause, exit 2, no
traceback (``--debug`` shows it); a bad config or output folder is refused before Prefect starts."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mblip.cli import describe_error
from pipeline.output_dir import check_output_dir

REPO = Path(__file__).resolve().parents[2]


def _mblip(*args, cwd=None, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(REPO), PREFECT_HOME=str(Path(cwd or ".") / "prefect-home"), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "mblip.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_describe_error_names_path_and_cause():
    assert describe_error(PermissionError(errno.EACCES, "Permission denied", "/data/out")) == \
        "/data/out: Permission denied"
    full = describe_error(OSError(errno.ENOSPC, "No space left on device", "/data/out/x.parquet"))
    assert full == "/data/out/x.parquet: No space left on device (the disk is full)"


def test_debug_shows_the_traceback(tmp_path):
    result = _mblip("--debug", "translate", str(tmp_path / "missing.txt"), "--tgt", "de", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr and "FileNotFoundError" in result.stderr
    plain = _mblip("translate", str(tmp_path / "missing.txt"), "--tgt", "de", cwd=tmp_path)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing.txt'}: No such file or directory"


def test_bad_config_fails_before_prefect_starts(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("sources: []\nrun: {languages: [xx]}\nnot_a_section: 1\n")
    result = _mblip("generate", str(config), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.yaml" in result.stderr and "temporary server" not in result.stderr.lower()


def test_foreign_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "u" / "data" / "sub").mkdir(parents=True)
    (tmp_path / "u" / "data" / "important.csv").write_text("x")
    with pytest.raises(ValueError, match="not an output of this tool"):
        check_output_dir(tmp_path / "u")
    assert (tmp_path / "u" / "data" / "important.csv").read_text() == "x"
    check_output_dir(tmp_path / "new")  # a new folder is fine
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")

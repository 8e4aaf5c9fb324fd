"""Operating-system errors end in one ``error:`` line naming the path and the cause, exit 2, no
traceback (``--debug`` shows it); a bad config, output folder, flag, model or image folder is refused before
Prefect starts, and before anything is written."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mblip.cli import describe_error
from pipeline.output_dir import RESOLVED_CONFIG, check_output_dir

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


@pytest.fixture()
def finished_output(tmp_path, demo_root, tiny_model_dir):
    """``make(**sections)``: a folder holding a resolved config over the demo data, as a finished output has."""
    from pipeline.demo import DEMO_CONFIG

    def make(name: str = "out", **sections) -> Path:
        config = yaml.safe_load(DEMO_CONFIG.read_text())
        config["translation"]["model"] = str(tiny_model_dir)
        config["sources"][0].update(annotations=str(demo_root / "annotations" / "captions_train2014.json"),
                                    images=str(demo_root / "images" / "train2014"))
        config["sources"] = config["sources"][:1]
        for section, values in sections.items():
            config[section].update(values) if isinstance(values, dict) else config.__setitem__(section, values)
        out = tmp_path / name
        out.mkdir()
        (out / RESOLVED_CONFIG).write_text(yaml.safe_dump(config))
        return out

    return make


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "temporary server" not in result.stderr.lower()  # failed before the embedded server started
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_regenerate_on_a_folder_that_is_no_output_touches_nothing(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    line = _one_error_line(_mblip("regenerate", str(mine), cwd=tmp_path))
    assert f"{mine}: not an output of this tool" in line
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]  # no _work/.lock that makes it look like one
    line = _one_error_line(_mblip("regenerate", str(tmp_path / "missing"), cwd=tmp_path))
    assert f"{tmp_path / 'missing'}: no such output folder" in line
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("flags, expected", [
    (["--model", "models/nope"], "error: --model: models/nope: no such model folder"),
    (["--min-bt-chrf", "500"], "error: --min-bt-chrf 500: filter.min_bt_chrf: Input should be less than or equal"),
], ids=["unknown-model", "impossible-threshold"])
def test_a_bad_regenerate_flag_is_named_before_prefect_starts(tmp_path, finished_output, flags, expected):
    out = finished_output()
    line = _one_error_line(_mblip("regenerate", str(out), *flags, cwd=tmp_path))
    assert line.startswith(expected) and RESOLVED_CONFIG not in line  # not blamed on the saved config
    assert sorted(p.name for p in out.iterdir()) == [RESOLVED_CONFIG]


@pytest.mark.parametrize("change, expected", [
    ({"translation": {"model": "models/nope"}}, "translation.model: models/nope: no such model folder"),
    ({"sources": [{"type": "coco_captions", "annotations": "captions.json", "images": "imgaes"}]},
     "image root not found: {tmp}/imgaes"),
], ids=["unknown-model", "image-root-typo"])
def test_generate_checks_model_and_image_roots_before_prefect_starts(tmp_path, finished_output, change, expected):
    config = finished_output("conf", **change) / RESOLVED_CONFIG
    (tmp_path / "conf" / "captions.json").write_text('{"images": [], "annotations": []}')
    line = _one_error_line(_mblip("generate", str(config), "--out", str(tmp_path / "out"), cwd=tmp_path))
    assert expected.format(tmp=tmp_path / "conf") in line
    assert not (tmp_path / "out").exists()


def test_a_bad_rules_file_is_named_with_its_field_before_prefect_starts(tmp_path, finished_output):
    out = finished_output()
    (tmp_path / "rules.yaml").write_text("min_bt_chrf: high\n")
    line = _one_error_line(_mblip("regenerate", str(out), "--rules", "rules.yaml", cwd=tmp_path))
    assert line.startswith("error: rules.yaml: invalid filter rules: min_bt_chrf: Input should be a valid number")
    assert sorted(p.name for p in out.iterdir()) == [RESOLVED_CONFIG]


@pytest.mark.parametrize("text, expected", [
    ("per_language:\n  de: {min_bt_chrf: 500}\n", "per_language.de.min_bt_chrf: Input should be less than or equal"),
    ("per_language:\n  de: {min_bleu: 3}\n", "per_language.de: unknown thresholds ['min_bleu']"),
    ("min_bt_chrf: [1\n", "rules.yaml: not valid YAML"),
    (None, "rules.yaml: no such filter rules file"),
], ids=["out-of-range-override", "unknown-knob", "broken-yaml", "missing"])
def test_every_kind_of_bad_rules_file_gets_one_line_naming_it(tmp_path, finished_output, capsys, monkeypatch, text,
                                                              expected):
    from mblip.cli import main

    out = finished_output()
    if text is not None:
        (tmp_path / "rules.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["regenerate", str(out), "--rules", "rules.yaml"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rules.yaml: ") and expected in lines[0]
    assert sorted(p.name for p in out.iterdir()) == [RESOLVED_CONFIG]

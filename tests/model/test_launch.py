"""The multi-GPU launcher runs the trainer by a script path that nothing in the current directory can shadow."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from setuptools import find_packages

import model
from model.checkpoint import list_checkpoints
from model.launch import TRAIN_WORKER, accelerate_command

REPO = Path(__file__).resolve().parents[2]


def test_the_launch_command_runs_the_worker_script_by_its_path():
    command = accelerate_command("run.yaml", 2, ["--max-steps", "3"])
    assert "--module" not in command and "model.train" not in command
    at = command.index(str(TRAIN_WORKER))
    assert command[at:] == [str(TRAIN_WORKER), "run.yaml", "--max-steps", "3"]
    assert command[:at] == [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                            "--mixed_precision", "no"]
    # The script's folder becomes sys.path[0] of each process: it holds nothing a project import could pick up.
    assert TRAIN_WORKER.is_file()
    assert {p.name for p in TRAIN_WORKER.parent.iterdir() if p.name != "__pycache__"} == {"__init__.py",
                                                                                         "train_worker.py"}


def test_the_worker_script_is_part_of_the_installed_package():
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "model.launcher" in find_packages(str(REPO), include=include)
    assert TRAIN_WORKER.parent == Path(model.__file__).resolve().parent / "launcher"


def test_the_worker_trains_from_a_folder_holding_its_own_model_module(make_config, tmp_path):
    cfg = make_config(train={"max_steps": 1})
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    cwd = tmp_path / "user-project"
    (cwd / "model").mkdir(parents=True)
    shadow = 'raise RuntimeError("imported from the current directory")\n'
    for name in ("model.py", "model/__init__.py", "model/train.py", "train.py", "data.py", "config.py"):
        (cwd / name).write_text(shadow)
    # The code under test first on the path (absolute entries only: a relative one would mean the cwd).
    paths = [str(Path(model.__file__).resolve().parents[1])]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.isabs(p)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(TRAIN_WORKER), str(config_path)], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "finished at step 1" in out.stderr
    assert [p.name for p in list_checkpoints(cfg.train.output_dir)] == ["step-0000001"]


def test_an_accelerate_config_file_replaces_the_multi_gpu_flags(tmp_path):
    from accelerate.commands.launch import launch_command_parser

    config = tmp_path / "fsdp.yaml"
    config.write_text("distributed_type: FSDP\nnum_machines: 2\nnum_processes: 16\nmachine_rank: 0\n"
                      "main_process_ip: 10.0.0.1\nmain_process_port: 29500\n")
    command = accelerate_command("run.yaml", 1, ["--max-steps", "3"], accelerate_config=config)
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" not in command and "--num_processes" not in command  # the file decides the topology
    args = launch_command_parser().parse_args(command[3:])  # accelerate's own parser reads the line as meant
    assert args.config_file == str(config) and args.mixed_precision == "no"
    assert args.training_script == str(TRAIN_WORKER) and args.training_script_args == ["run.yaml", "--max-steps", "3"]
    # --gpus N still overrides the file's process count
    assert launch_command_parser().parse_args(accelerate_command("run.yaml", 4, [], config)[3:]).num_processes == 4


def test_a_bad_accelerate_config_fails_before_any_process_starts(make_config, tmp_path):
    from model.launch import launch_training

    cfg = make_config(train={"max_steps": 1})
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    with pytest.raises(FileNotFoundError, match="--accelerate-config"):
        launch_training(config_path, accelerate_config=tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("num_processes: many\n")
    with pytest.raises(ValueError, match="num_processes must be a positive integer"):
        launch_training(config_path, accelerate_config=tmp_path / "bad.yaml")


@pytest.mark.slow  # a real `accelerate launch` subprocess (~30 s on 2 cores); run with -m slow
def test_training_runs_under_a_users_accelerate_config(make_config, tmp_path):
    """``mblip train --accelerate-config FILE`` end to end: accelerate launch reads the file (one CPU process)."""
    from model.launch import launch_training

    cfg = make_config(train={"max_steps": 2})
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    accelerate_config = tmp_path / "cpu.yaml"
    accelerate_config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nnum_machines: 1\n"
                                 "num_processes: 1\nuse_cpu: true\nmixed_precision: 'no'\n")
    paths = [str(Path(model.__file__).resolve().parents[1])]
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.isabs(p)]
    os.environ["PYTHONPATH"], saved = os.pathsep.join(paths), os.environ.get("PYTHONPATH")
    try:
        summary = launch_training(config_path, accelerate_config=accelerate_config)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved
    assert summary["step"] == 2 and summary["checkpoint"].endswith("step-0000002")

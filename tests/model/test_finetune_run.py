"""``run_finetune``: a halted fine-tune resumes with the trainer's rules on the same prepared data, then is scored
on its benchmark; the evaluation's folders are checked before any training."""

from __future__ import annotations

import json
import logging

import pytest
import yaml

from model.demo.benchmarks import SAMPLE_WRITERS, SHAPES
from model.finetune.run import run_finetune
from model.finetune.samples import write_training_samples
from model.train import train


@pytest.fixture()
def realigned(make_config, tmp_path):
    """A re-alignment checkpoint of the tiny model (1 step)."""
    return train(make_config(train={"output_dir": str(tmp_path / "realign"), "max_steps": 1})).checkpoint


def _config(tmp_path, **evaluate) -> str:
    write_training_samples("xvnli", tmp_path / "snli_ve" / "snli_ve_train.jsonl", tmp_path / "flickr30k", 4)
    SAMPLE_WRITERS["xvnli"](tmp_path / "xvnli", tmp_path / "flickr30k", ("en", "es"), list(SHAPES))
    config = {
        "finetune": {"recipe": "xvnli", "train_file": str(tmp_path / "snli_ve" / "snli_ve_train.jsonl"),
                     "images": str(tmp_path / "flickr30k")},
        "evaluate": {"data": str(tmp_path / "xvnli"), "images": str(tmp_path / "flickr30k"),
                     "languages": ["en", "es"], "batch_size": 3, **evaluate},
        "data": {"max_length": 32, "max_target_length": 8, "num_workers": 0, "val_rows": 0},
        "train": {"output_dir": str(tmp_path / "ft"), "batch_size": 2, "global_batch": 2, "max_steps": 2,
                  "eval_every": 0, "save_every": 0},
    }
    path = tmp_path / "xvnli.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_halted_fine_tune_resumes_on_the_same_data_then_is_scored(realigned, tmp_path, caplog):
    config = _config(tmp_path)
    first = run_finetune(config, checkpoint=str(realigned), stop_after=1, progress=False)
    assert first["train"]["step"] == 1 and "eval" not in first and not first["data"]["reused"]
    assert first["data"]["rows"] == 4 and first["from_checkpoint"] == str(realigned)

    with caplog.at_level(logging.INFO, logger="model.train"):
        done = run_finetune(config, checkpoint=str(realigned), progress=False)
    assert done["data"]["reused"] and done["train"]["step"] == 2
    assert f"resuming from {tmp_path / 'ft' / 'checkpoints' / 'step-0000001'} (step 1)" in caplog.text
    meta = json.loads((tmp_path / "ft" / "checkpoints" / "step-0000002" / "state.json").read_text())
    assert meta["batches_consumed"] == [2]  # one batch per step over both calls
    resolved = yaml.safe_load((tmp_path / "ft" / "finetune-train.yaml").read_text())
    assert resolved["train"]["init_from"] == str(realigned)
    assert resolved["data"]["manifest"] == str(tmp_path / "ft" / "data")
    scores = done["eval"]
    assert list(scores["languages"]) == ["en", "es"] and scores["scored"] == 6
    assert (tmp_path / "ft" / "eval" / "xvnli.json").is_file()


def test_missing_benchmark_files_fail_before_training(realigned, tmp_path):
    config = _config(tmp_path, data=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="evaluate.data: .*nowhere"):
        run_finetune(config, checkpoint=str(realigned), progress=False)
    assert not (tmp_path / "ft" / "checkpoints").exists()

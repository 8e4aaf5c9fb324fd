"""The trainer on every task of the mix: prompts and targets from the rows, the start-up task check,
and the loss per task."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from model.data import check_tasks, read_manifest, row_to_example
from model.demo.trainer import kept_shard_entry
from model.task_loss import IGNORE_INDEX, per_example_loss

ALL_TASKS = {"caption", "vqa", "vqg", "aokvqa_explain", "aokvqa_cot", "llava", "classify", "decide", "instruct"}


@pytest.fixture(scope="module")
def all_tasks_output(demo_root, tmp_path_factory):
    import shutil

    from model.demo.trainer import write_all_tasks_demo_output
    from pipeline.demo.tasks import generate_task_demo_data

    root = tmp_path_factory.mktemp("all-tasks-demo")
    shutil.copytree(demo_root, root / "scenes")
    generate_task_demo_data(root / "scenes")
    return write_all_tasks_demo_output(root / "scenes", root / "out", cap_per_task=4)


def test_demo_output_holds_every_task_with_prompt_and_target(all_tasks_output):
    rows = pl.read_parquet(all_tasks_output / "data" / "en" / "part-00000.parquet")
    assert set(rows["task"]) == ALL_TASKS
    assert rows.group_by("task").len()["len"].max() <= 4
    data = read_manifest(all_tasks_output)
    assert check_tasks(data) == {t: n for t, n in sorted(rows.group_by("task").len().iter_rows())}
    for row in rows.iter_rows(named=True):
        ex = row_to_example(row, data.image_roots)
        assert ex.prompt and ex.target and ex.task == row["task"] and ex.image_path.is_file()
        if row["task"] not in ("caption", "vqa"):
            assert (ex.prompt, ex.target) == (row["prompt"], row["target"])


def test_unknown_task_fails_at_start_up_naming_task_and_shard(all_tasks_output, tmp_path, make_config):
    from model.train import train

    rows = pl.read_parquet(all_tasks_output / "data" / "en" / "part-00000.parquet")
    bad = tmp_path / "bad"
    (bad / "data" / "en").mkdir(parents=True)
    rows.with_columns(
        pl.when(pl.col("task") == "llava").then(pl.lit("poetry")).otherwise(pl.col("task")).alias("task")
    ).write_parquet(bad / "data" / "en" / "part-00000.parquet")
    manifest = json.loads((all_tasks_output / "manifest.json").read_text())
    manifest["files"] = [kept_shard_entry(bad, "data/en/part-00000.parquet", "en", rows.height)]
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"part-00000\.parquet: task 'poetry'"):
        check_tasks(read_manifest(bad))
    cfg = make_config(data={"manifest": str(bad)}, train={"output_dir": str(tmp_path / "run")})
    with pytest.raises(ValueError, match="poetry"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()  # failed before the first step


def test_per_example_loss_matches_the_mean_token_loss():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    labels = torch.randint(0, 11, (3, 5))
    labels[0, 3:] = IGNORE_INDEX
    losses = per_example_loss(logits, labels, decoder_only=False)
    for i in range(3):
        keep = labels[i] != IGNORE_INDEX
        assert losses[i].item() == pytest.approx(
            torch.nn.functional.cross_entropy(logits[i][keep], labels[i][keep]).item()
        )
    shifted = per_example_loss(logits, labels, decoder_only=True)
    expected = torch.nn.functional.cross_entropy(logits[1, :-1], labels[1, 1:])
    assert shifted[1].item() == pytest.approx(expected.item())


def test_tiny_trainer_trains_on_every_task_and_logs_loss_per_task(all_tasks_output, make_config, tmp_path):
    from model.train import train

    cfg = make_config(
        data={"manifest": str(all_tasks_output)},
        train={"max_steps": 12, "batch_size": 8, "log_every": 1, "output_dir": str(tmp_path / "run")},
    )
    result = train(cfg)
    assert result.step == 12
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    seen = {k.removeprefix("loss_") for m in metrics for k in m if k.startswith("loss_")}
    assert seen == ALL_TASKS
    assert all(v == v and v > 0 for m in metrics for k, v in m.items() if k.startswith("loss_"))

"""`mblip eval` end to end on the tiny model, for every benchmark in its official file formats (the seven of the
paper, the English baselines COCO Karpathy test and VQAv2 val, and CHAIR)."""

from __future__ import annotations

import json
import shutil

import pytest

from model.evaluate.benchmarks import BENCHMARKS


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_mblip_eval_scores_every_language_from_the_official_files(name, benchmark_files, tiny_run, tmp_path, capsys):
    from mblip.cli import main

    if BENCHMARKS[name].metric == "cider" and shutil.which("java") is None:
        pytest.skip("CIDEr needs java (pycocoevalcap's PTB tokenizer)")
    data, images, languages = benchmark_files(name)
    out = tmp_path / f"{name}.json"
    argv = [
        "eval",
        name,
        "--data",
        str(data),
        "--images",
        str(images),
        "--model",
        str(tiny_run["export"]),
        "--languages",
        *languages,
        "--out",
        str(out),
        "--batch-size",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert list(result["languages"]) == languages
    predictions = [json.loads(line) for line in open(result["predictions"], encoding="utf-8")]
    assert len(predictions) == result["scored"] == sum(row["n"] for row in result["languages"].values())
    assert result["skipped"] == 0 and result["records"] == result["scored"]
    for row in result["languages"].values():
        assert row["score"] is not None and 0 <= row["score"] <= (1000 if BENCHMARKS[name].metric == "cider" else 100)
    averaged = [lang for lang in languages if lang not in BENCHMARKS[name].mean_excludes]
    assert result["mean_over"] == averaged
    expected_mean = sum(result["languages"][lang]["score"] for lang in averaged) / len(averaged)
    assert result["mean"] == pytest.approx(expected_mean)
    table = capsys.readouterr().out
    assert all(f"\n{lang} " in table for lang in languages) and "mean" in table


def test_missing_image_and_malformed_record_stop_the_run_or_are_counted(benchmark_files, tiny_run, tmp_path, capsys):
    from mblip.cli import main

    data, images, languages = benchmark_files("pope")
    path = data / "coco_pope_adversarial.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["image"] = "COCO_val2014_000000000001.jpg"  # not in the image folder
    del rows[1]["label"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "pope.json"
    argv = ["eval", "pope", "--data", str(data), "--images", str(images), "--model", str(tiny_run["export"]),
            "--languages", *languages, "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "coco_pope_adversarial.json, line 1: missing image" in err and "COCO_val2014_000000000001.jpg" in err
    assert main(argv + ["--skip-missing"]) == 0
    result = json.loads(out.read_text())
    assert result["skipped_by_reason"] == {"missing image": 1, "malformed record": 1}
    assert result["records"] == 4 == result["scored"] + result["skipped"] and result["mean_over"] == ["random"]
    assert result["languages"]["adversarial"] == {"score": None, "n": 0, "skipped": 2}
    assert "skipped: 2" in capsys.readouterr().out

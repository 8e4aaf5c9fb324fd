"""The GPU check script, run end to end on tiny models on the CPU."""

from __future__ import annotations

import re


def test_gpu_check_runs_end_to_end_with_tiny_models(tmp_path, capsys):
    import json

    from dev.gpu_check import main

    main(["--tiny", "--steps", "2", "--batch-size", "2", "--work-dir", str(tmp_path)])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"gpu_check: tiny \(CPU\) on cpu, batch 2, 2 steps: ([\d.]+) samples/s, "
                         r"peak GPU memory ([\d.]+) GiB, loss ([\d.]+) -> ([\d.]+) \(setup [\d.]+s\)", line)
    assert match, line
    # the numbers are the training run's: throughput after warm-up (the second of two steps), the first
    # and last step losses; no GPU memory on the CPU
    steps = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    assert match[1] == f"{steps[1]['samples_per_s']:.2f}" and float(match[1]) > 0
    assert match[2] == "0.00"
    assert (match[3], match[4]) == (f"{steps[0]['loss']:.3f}", f"{steps[1]['loss']:.3f}")

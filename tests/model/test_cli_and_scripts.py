"""The model subcommands of `mblip` and the GPU check script, run end to end on tiny models."""

from __future__ import annotations

import re

import yaml


def test_model_info_caption_and_ask_from_the_command_line(make_config, tmp_path, demo_root, capsys):
    from model.export import export_checkpoint
    from model.train import train
    from mblip.cli import main

    cfg = make_config(train={"max_steps": 1})
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))

    assert main(["model-info", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^lora\s+[\d,]+\s+[\d,]+$", out, re.M) and "trainable:" in out

    export = export_checkpoint(train(cfg).checkpoint, tmp_path / "export")
    image = next((demo_root / "images").rglob("*.jpg"))
    assert main(["caption", str(image), "--lang", "de", "--model", str(export), "--beams", "2"]) == 0
    assert main(["ask", str(image), "What shape is shown in the image?", "--lang", "en", "--model", str(export)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2  # one line of generated text per command (may be short for a 1-step model)

    assert main(["ask", str(image), "What shape?", "--model", str(export), "--beams", "2", "--max-new-tokens", "3",
                 "--min-new-tokens", "3", "--length-penalty", "-1"]) == 0


def test_gpu_check_runs_end_to_end_with_tiny_models(tmp_path, capsys):
    from tools.gpu_check import main

    main(["--tiny", "--steps", "2", "--batch-size", "2", "--work-dir", str(tmp_path)])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.match(r"gpu_check: tiny \(CPU\) on cpu, batch 2, 2 steps: ([\d.]+) samples/s, "
                     r"peak GPU memory ([\d.]+) GiB", line)
    assert match and float(match.group(1)) > 0

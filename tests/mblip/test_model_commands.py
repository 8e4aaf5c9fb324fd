"""The model subcommands of `mblip`, run end to end on tiny models."""

from __future__ import annotations

import re

import yaml


def _parameter_rows(out: str) -> dict[str, tuple[int, int]]:
    """``component -> (total, trainable)`` from the table ``model-info`` prints."""
    return {m[1]: (int(m[2].replace(",", "")), int(m[3].replace(",", "")))
            for m in re.finditer(r"^(\w+)\s+([\d,]+)\s+([\d,]+)$", out, re.M)}


def test_model_info_caption_and_ask_from_the_command_line(make_config, tmp_path, demo_root, capsys):
    import torch

    from mblip.cli import main
    from model.build import COMPONENTS, build_model, count_parameters
    from model.export import export_checkpoint
    from model.infer import ask, caption, generation_settings
    from model.train import train

    cfg = make_config(train={"max_steps": 1})
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))

    assert main(["model-info", str(config_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{cfg.model.blip2} + {cfg.model.llm} (stage full, meta device: no weights)"
    rows = _parameter_rows("\n".join(lines))
    assert list(rows) == [*COMPONENTS, "all"]
    # the meta-device counts are those of the real model, and the full stage trains all but vision and LLM
    real = count_parameters(build_model(cfg.model, cfg.lora, "full", torch.device("cpu")).model)
    assert {c: rows[c] for c in COMPONENTS} == {c: (e["total"], e["trainable"]) for c, e in real.items()}
    assert rows["vision"][1] == rows["llm"][1] == 0 and rows["vision"][0] > 0 and rows["llm"][0] > 0
    assert all(rows[c][1] == rows[c][0] > 0 for c in ("qformer", "query_tokens", "projection", "lora"))
    total, trainable = (sum(rows[c][i] for c in COMPONENTS) for i in (0, 1))
    assert rows["all"] == (total, trainable)
    assert lines[-2] == f"trainable: {trainable / 1e6:.1f}M of {total / 1e6:.1f}M ({100 * trainable / total:.2f}%)"
    per_device, global_batch = cfg.train.batch_size, cfg.train.global_batch
    assert lines[-1] == (f"effective batch: {global_batch} ({per_device} per device x accumulation "
                         f"{global_batch // per_device} x 1 processes)")

    export = export_checkpoint(train(cfg).checkpoint, tmp_path / "export")
    image = next((demo_root / "images").rglob("*.jpg"))
    question = "What shape is shown in the image?"
    assert main(["caption", str(image), "--lang", "de", "--model", str(export), "--beams", "2"]) == 0
    assert main(["ask", str(image), question, "--lang", "en", "--model", str(export)]) == 0
    assert main(["ask", str(image), "What shape?", "--model", str(export), "--beams", "2", "--max-new-tokens", "3",
                 "--min-new-tokens", "3", "--length-penalty", "-1"]) == 0
    # one line per command: the text the library generates for those options (the paper's defaults
    # for the rest; `ask` answers in English unless --lang says otherwise)
    forced = generation_settings("answer", num_beams=2, max_new_tokens=3, min_new_tokens=3, length_penalty=-1.0)
    assert capsys.readouterr().out.splitlines() == [
        caption(image, "de", export, generation_settings("caption", num_beams=2)),
        ask(image, question, "en", export, generation_settings("answer")),
        ask(image, "What shape?", "en", export, forced),
    ]

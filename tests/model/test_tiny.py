"""Tiny checkpoints: properties the demo evaluation relies on."""

from __future__ import annotations

import json

import pytest


def test_tiny_mt5_adds_no_dropout_noise_in_training_mode(tiny_dirs):
    """The trainer runs the frozen LLM in training mode; the tiny mT5 must give the same output twice
    (dropout in a 64-wide LLM drowned the gradient the Q-Former learns shape from)."""
    import torch
    from transformers import MT5ForConditionalGeneration

    model = MT5ForConditionalGeneration.from_pretrained(tiny_dirs["mt5"]).train()
    ids = torch.tensor([[5, 6, 7, 8, 1]])
    with torch.no_grad():
        first = model(input_ids=ids, labels=ids).logits
        second = model(input_ids=ids, labels=ids).logits
    assert torch.equal(first, second)


def test_the_demo_evaluation_command_runs_at_tiny_size(tmp_path, monkeypatch):
    """`python -m model.demo.eval_model` (docs/training.md) end to end in seconds, from a folder that is not the
    checkout (its config is found next to the module): 20 scenes, 2 steps, greedy answers."""
    from model.demo.eval_model import main

    monkeypatch.chdir(tmp_path)
    main(["--work-dir", "work", "--n-images", "20", "--steps", "2", "--beams", "1", "--batch-size", "4"])
    report = json.loads((tmp_path / "work" / "eval_demo.json").read_text())
    assert report["steps"] == 2 and report["heldout_questions"] > 0
    assert set(report["accuracy"]) == set(report["accuracy_shuffled_images"]) >= {"colour", "shape", "yes/no"}


@pytest.mark.slow
def test_demo_eval_answers_shape_and_colour_from_the_image(tmp_path):
    """The whole demo evaluation at its defaults (about 8 minutes): held-out colour and shape questions
    well above chance with the right images, near chance with the images shuffled among the questions."""
    import torch

    from model.demo.eval_model import CHANCE, main

    torch.set_num_threads(1)
    main(["--work-dir", str(tmp_path)])
    report = json.loads((tmp_path / "eval_demo.json").read_text())
    right, shuffled = report["accuracy"], report["accuracy_shuffled_images"]
    for kind in ("colour", "shape"):
        assert right[kind] > CHANCE[kind] + 0.4, (kind, right)
        assert shuffled[kind] < CHANCE[kind] + 0.15, (kind, shuffled)

"""Decoding settings of `mblip ask` / `mblip caption`: the paper's evaluation settings, all configurable."""

from __future__ import annotations

from dataclasses import astuple

import pytest


def test_defaults_are_the_papers_short_answer_and_caption_settings():
    from model.infer import GenerationSettings, generation_settings

    paper_vqa = GenerationSettings(num_beams=5, max_new_tokens=10, min_new_tokens=1, length_penalty=-1.0)
    paper_caption = GenerationSettings(num_beams=5, max_new_tokens=50, min_new_tokens=1, length_penalty=1.0)
    assert generation_settings("answer") == paper_vqa and generation_settings("caption") == paper_caption
    assert generation_settings("answer", num_beams=2, length_penalty=None) == GenerationSettings(2, 10, 1, -1.0)


@pytest.mark.parametrize(("command", "task", "expected"), [
    (["ask", "img.jpg", "What colour?"], "answer", (5, 10, 1, -1.0)),
    (["caption", "img.jpg"], "caption", (5, 50, 1, 1.0)),
    (["ask", "img.jpg", "Q?", "--beams", "3", "--max-new-tokens", "4", "--min-new-tokens", "2",
      "--length-penalty", "0.5"], "answer", (3, 4, 2, 0.5)),
])
def test_command_line_uses_them_and_every_one_is_configurable(command, task, expected):
    from mblip.cli import build_parser
    from mblip.commands.model import _generation

    args = build_parser().parse_args([*command, "--model", "exported"])
    assert astuple(_generation(args, task)) == expected

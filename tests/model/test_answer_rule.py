"""The answer rule: when the coin flip picks the English answer, the prompt asks for it in English
(mBLIP); prompt and target agree on every example."""

from __future__ import annotations

from pathlib import Path

from model.data import row_to_example
from pipeline.template_table import TEMPLATES


def _vqa_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        lang, name = (("de", "German"), ("fr", "French"))[i % 2]
        question = "Welche Farbe hat der Kreis?" if lang == "de" else "De quelle couleur est le cercle ?"
        rows.append({
            "example_id": f"q{i}", "task": "vqa", "image_id": str(i), "image_path": f"{i}.jpg", "source": "vqav2",
            "text_en": "What color is the circle?", "answer_en": "red", "lang": lang, "text_tgt": question,
            "answer_tgt": "rot" if lang == "de" else "rouge",
            # the instruction the pipeline wrote: an English template naming the row's language
            "prompt": TEMPLATES["vqa"][i % 3].format(lang=name, question=question),
        })
    return rows


def test_prompt_and_target_agree_on_every_example_at_one_half():
    examples = [(row, row_to_example(row, {}, english_answer_prob=0.5)) for row in _vqa_rows(200)]
    english = [ex for _, ex in examples if ex.target == "red"]
    assert 70 < len(english) < 130  # the coin is fair
    for row, ex in examples:
        name = {"de": "German", "fr": "French"}[row["lang"]]
        if ex.target == "red":
            assert "English" in ex.prompt and name not in ex.prompt, ex
        else:
            assert ex.target == row["answer_tgt"] and name in ex.prompt and "English" not in ex.prompt, ex
        assert row["text_tgt"] in ex.prompt  # the question is the (translated) question either way


def test_default_coin_is_the_papers():
    from model.config import DataConfig

    assert DataConfig().english_answer_prob == 0.5
    assert row_to_example(_vqa_rows(1)[0], {Path("x").name: Path("/")}).prompt  # builds without a flip argument

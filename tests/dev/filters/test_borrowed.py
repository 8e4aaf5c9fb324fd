"""The borrowed-word lists of the English-leak signal (``python -m dev.filters.borrowed``): a word counts as
borrowed when translators keep it in enough pairs, not when it merely occurs in the references."""

from __future__ import annotations

import gzip

import yaml

from dev.filters.borrowed import borrowed_from_pairs, main


def test_a_word_kept_in_enough_of_its_pairs_is_borrowed_and_a_slip_is_not():
    sources = ["A man in jeans walks."] * 3 + ["A blue car."] * 30 + ["The Blue Man Group plays."]
    targets = ["Ein Mann in Jeans geht."] * 3 + ["Ein blaues Auto."] * 29 + ["Ein blue Auto."] + ["Die Gruppe spielt."]
    words = borrowed_from_pairs(sources, targets)
    assert "jeans" in words and "in" in words  # kept in 3 of 3 pairs
    assert "blue" not in words  # kept once in 30 pairs; "Blue" of the name is no English word here
    assert "man" not in words  # "Mann" is not "man"


def test_the_command_writes_a_list_per_language(tmp_path):
    lines = {"en": ["A man in jeans walks."] * 2, "de": ["Ein Mann in Jeans geht."] * 2,
             "fr": ["Un homme en jeans marche."] * 2, "cs": ["Muž v džínách jde."] * 2}
    for lang, text in lines.items():
        with gzip.open(tmp_path / f"train.{lang}.gz", "wt", encoding="utf-8") as f:
            f.write("\n".join(text) + "\n")
    out = tmp_path / "borrowed.yaml"
    assert main(["--data", str(tmp_path), "--out", str(out)]) == 0
    lists = yaml.safe_load(out.read_text())
    assert lists == {"deu_Latn": ["in", "jeans"], "fra_Latn": ["jeans"], "ces_Latn": []}

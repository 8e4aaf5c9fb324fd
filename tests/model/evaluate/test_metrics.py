"""Scores against hand-computed values: CIDEr-D (pycocoevalcap), POPE, accuracy, segmentation."""

from __future__ import annotations

import math
import shutil

import pytest

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTB tokenizer needs java")


@needs_java
def test_cider_matches_the_value_computed_by_hand():
    """Two images (so IDF = log 2 for n-grams seen in one reference set).

    A: hypothesis = reference "a b": cosine 1 for n = 1, 2; no 3- or 4-grams -> (1 + 1 + 0 + 0) / 4 x 10 = 5.
    B: hypothesis "c e" vs reference "c d": unigram vectors (c, d) and (c, e), all weights log 2;
    clipped dot product log2^2 over norms 2 log2^2 = 0.5; no shared bigram -> 0.5 / 4 x 10 = 1.25.
    Corpus: (5 + 1.25) / 2 = 3.125, reported x100. Tokenisation lowercases and drops punctuation.
    """
    from model.evaluate.captioning import cider

    score, per_item = cider({"A": ["A b!"], "B": ["c, d."]}, {"A": "a B", "B": "C e"})
    assert score == pytest.approx(312.5, abs=1e-4)
    assert per_item == pytest.approx({"A": 500.0, "B": 125.0}, abs=1e-4)


@needs_java
def test_cider_of_an_empty_prediction_is_zero_and_keeps_the_others_aligned():
    from model.evaluate.captioning import cider

    _, per_item = cider({"A": ["a b"], "B": ["c d"]}, {"A": "", "B": "c d"})
    assert per_item["A"] == 0.0 and per_item["B"] == pytest.approx(500.0, abs=1e-4)


def test_segmentation_for_languages_written_without_spaces():
    from model.evaluate.captioning import segment

    assert segment("一只 猫。", "zh") == "一 只 猫 。"
    assert segment("猫が机の上に座っている", "ja") == "猫 が 机 の 上 に 座っ て いる"  # SudachiPy mode A
    assert segment("แมวนั่งอยู่บนโต๊ะ", "th") == "แมว นั่ง อยู่ บน โต๊ะ"  # PyThaiNLP newmm
    assert segment("Cafe\u0301 au lait", "fr") == "Café au lait"  # NFC, otherwise unchanged


def test_pope_score_is_the_references_exact_match_and_the_pope_reading_gives_the_extra_fields():
    """The score is mBLIP's (cleaned exact match with yes/no); F1 and the rest read free text as POPE does."""
    from model.evaluate.metrics import score_items

    predictions = ["Yes", "yes, there is", "No.", "no", "yes", "There is no dog."]
    labels = [["yes"], ["no"], ["no"], ["yes"], ["yes"], ["no"]]
    summary, correct = score_items("pope", labels, predictions, "random")
    # Exact match after vqa_clean: items 0, 2, 4 ("there is no dog" is not "no", as in the reference).
    assert correct == [True, False, True, False, True, False]
    assert summary["score"] == pytest.approx(50.0)
    # POPE's reading: yes, yes, no, no, yes, no -> tp = 2 (0, 4), fp = 1 (1), fn = 1 (3), tn = 2 (2, 5).
    assert summary["pope_accuracy"] == pytest.approx(400 / 6)
    assert summary["precision"] == pytest.approx(200 / 3) and summary["recall"] == pytest.approx(200 / 3)
    assert summary["f1"] == pytest.approx(200 / 3) and summary["yes_ratio"] == pytest.approx(50.0)


def test_accuracy_metrics():
    from model.evaluate.metrics import score_items

    summary, exact = score_items(
        "vqa_accuracy", [["yes"], ["maybe"], ["no"], ["table"]], ["Yes.", "maybe not", "no", "a table"], "en"
    )
    assert exact == [True, False, True, True] and summary["score"] == 75.0 and summary["relaxed"] == 100.0
    summary, exact = score_items("maxm_accuracy", [["rouge", "rouge vif"], ["bleu"]], ["Rouge vif", "le bleu"], "fr")
    assert exact == [True, False] and summary["score"] == 50.0
    summary, _ = score_items("vqa_accuracy", [], [], "en")
    assert summary["n"] == 0 and math.isnan(summary["score"])

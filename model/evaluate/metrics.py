"""Scores per language from predictions, one function per metric (the reference evaluation's choices).

- ``cider``: CIDEr-D x100 with the paper's segmentation (``captioning.cider``).
- ``vqa_accuracy``: % of items whose ``vqa_clean``-ed prediction equals the lowercased label (xGQA,
  XVNLI, MaRVL); the relaxed rate (prediction starts or ends with the label) is reported next to it.
- ``maxm_accuracy``: % of items whose lowercased prediction equals one of the processed answers.
- ``pope``: the reference's score, exact match after ``vqa_clean`` as for xGQA (mBLIP evaluated POPE with
  its classification metric); the POPE paper's numbers as extra fields, from POPE's own reading of free
  text (``pope_answer``): ``pope_accuracy``, precision, recall, F1 (positive class "yes") and yes-ratio,
  all in %.
- ``vqav2_accuracy``: the official VQA accuracy (``normalize.vqa_accuracy``: min(#humans / 3, 1) averaged
  over the 10 leave-one-out subsets of the human answers), mean over the questions, in %.
- ``chair``: CHAIRs (the reported score) and CHAIRi in %, lower is better (``chair.chair_scores``); the
  references are the image's ground-truth COCO categories.
"""

from __future__ import annotations

from collections.abc import Sequence

from model.evaluate.captioning import cider
from model.evaluate.chair import CocoObjects, chair_scores
from model.evaluate.normalize import maxm_match, pope_answer, relaxed_vqa_match, vqa_accuracy, vqa_match


def _pct(numerator: float, denominator: float) -> float:
    return 100.0 * numerator / denominator if denominator else float("nan")


def score_items(
    metric: str, references: Sequence[Sequence[str]], predictions: Sequence[str], lang: str
) -> tuple[dict, list]:
    """(summary, per-item score) for one language; summary["score"] is the reported number."""
    n = len(predictions)
    if metric == "cider":
        keys = [str(i) for i in range(n)]
        score, per_item = cider(dict(zip(keys, references)), dict(zip(keys, predictions)), lang)
        return {"score": score, "n": n}, [per_item[k] for k in keys]
    if metric == "vqa_accuracy":
        exact = [vqa_match(p, r[0]) for p, r in zip(predictions, references)]
        relaxed = [relaxed_vqa_match(p, r[0]) for p, r in zip(predictions, references)]
        return {"score": _pct(sum(exact), n), "n": n, "relaxed": _pct(sum(relaxed), n)}, exact
    if metric == "maxm_accuracy":
        exact = [maxm_match(p, r) for p, r in zip(predictions, references)]
        return {"score": _pct(sum(exact), n), "n": n}, exact
    if metric == "vqav2_accuracy":
        accuracies = [vqa_accuracy(p, r) for p, r in zip(predictions, references)]
        return {"score": _pct(sum(accuracies), n), "n": n}, accuracies
    if metric == "chair":
        return chair_scores(CocoObjects.load(), predictions, references)
    if metric == "pope":
        labels = [r[0] for r in references]
        exact = [vqa_match(p, y) for p, y in zip(predictions, labels)]
        answers = [pope_answer(p) for p in predictions]
        tp = sum(a == "yes" and y == "yes" for a, y in zip(answers, labels))
        fp = sum(a == "yes" and y == "no" for a, y in zip(answers, labels))
        fn = sum(a == "no" and y == "yes" for a, y in zip(answers, labels))
        precision, recall = _pct(tp, tp + fp), _pct(tp, tp + fn)
        f1 = 2 * precision * recall / (precision + recall) if (precision + recall) > 0 else float("nan")
        summary = {
            "score": _pct(sum(exact), n),
            "n": n,
            "pope_accuracy": _pct(sum(a == y for a, y in zip(answers, labels)), n),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "yes_ratio": _pct(answers.count("yes"), n),
        }
        return summary, exact
    raise ValueError(f"unknown metric {metric!r}")

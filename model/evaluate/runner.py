"""One benchmark run: read the official files, generate in batches, score per language, write the results.

Outputs (written to a temporary name, then renamed): ``OUT.json`` with one score per language, the mean
over the languages the paper averages (English left out where the paper reports it on its own) and the
counts (records read, scored, skipped with reasons); and the predictions beside it,
``OUT.predictions.jsonl`` (one line per item: key, language, prompt, prediction, references, item score).
An image that cannot be opened raises an error naming the image and the record, or with ``skip_missing``
is counted as skipped like a missing file. The paper's numbers are not part of a run: ``mblip eval-report
--paper FILE`` puts them beside the scores.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from model.data import load_image
from model.evaluate.benchmarks import get_benchmark, resolve_languages
from model.evaluate.generation import generate_batch, load_for_eval
from model.evaluate.metrics import score_items
from model.evaluate.readers import BenchmarkData, EvalItem, read_benchmark

log = logging.getLogger(__name__)


def predictions_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".json") + ".predictions.jsonl")


def _load_images(item: EvalItem) -> list:
    images = []
    for path in item.images:
        try:
            images.append(load_image(path))
        except (OSError, ValueError) as e:
            raise OSError(f"{item.source}: cannot open image {path}: {e}") from e
    return images


def generate_predictions(
    em,
    items: Sequence[EvalItem],
    settings,
    batch_size: int,
    skip_missing: bool,
    skipped: list[dict],
    progress: bool = True,
    desc: str = "eval",
) -> list[tuple[EvalItem, str]]:
    """(item, prediction) for every item whose images open; unreadable ones raise or go to ``skipped``."""
    from tqdm.auto import tqdm

    done: list[tuple[EvalItem, str]] = []
    bar = tqdm(total=len(items), desc=desc, disable=not progress, unit="item")
    for start in range(0, len(items), batch_size):
        batch, images = [], []
        for item in items[start : start + batch_size]:
            try:
                images.append(_load_images(item))
                batch.append(item)
            except OSError as e:
                if not skip_missing:
                    raise
                skipped.append({"lang": item.lang, "source": item.source, "reason": str(e), "kind": "unreadable image"})
        if batch:
            texts = generate_batch(em, images, [item.prompt for item in batch], settings)
            done.extend(zip(batch, texts))
        bar.update(len(items[start : start + batch_size]))
    bar.close()
    return done


def score_predictions(
    benchmark: str, languages: Sequence[str], done: Sequence[tuple[EvalItem, str]]
) -> tuple[dict, list]:
    """Per-language summaries, the mean, and the per-item scores (aligned with ``done``)."""
    spec = get_benchmark(benchmark)
    per_lang: dict[str, dict] = {}
    item_scores: dict[int, float | bool] = {}
    for lang in languages:
        index = [i for i, (item, _) in enumerate(done) if item.lang == lang]
        if not index:  # every item of the language was skipped: listed, not scored
            per_lang[lang] = {"score": None, "n": 0}
            continue
        summary, scores = score_items(
            spec.metric, [done[i][0].references for i in index], [done[i][1] for i in index], lang
        )
        per_lang[lang] = summary
        item_scores.update(zip(index, scores))
    averaged = [lang for lang, row in per_lang.items() if lang not in spec.mean_excludes and row["score"] is not None]
    mean = sum(per_lang[lang]["score"] for lang in averaged) / len(averaged) if averaged else None
    return {"languages": per_lang, "mean": mean, "mean_over": averaged}, [item_scores.get(i) for i in range(len(done))]


def _clean(value):
    """NaN -> None, recursively (strict JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_evaluation(
    benchmark: str,
    data_dir: str | Path,
    images_dir: str | Path,
    model_dir: str | Path,
    out: str | Path,
    languages: Sequence[str] | None = None,
    limit: int | None = None,
    skip_missing: bool = False,
    split: str | None = None,
    batch_size: int = 8,
    device: str = "auto",
    quantization: str = "auto",
    progress: bool = True,
    eval_model=None,
    language_names: str = "project",
    vision_precision: str = "auto",
) -> dict:
    """Evaluate MODEL_DIR on one benchmark; returns the results dict that is also written to ``out``.

    ``language_names``: "project" (corrected) or "reference" spelling of language names in prompts.
    ``quantization``, ``vision_precision``: the numerics knobs (``generation.resolve_numerics``)."""
    spec = get_benchmark(benchmark)
    langs = resolve_languages(spec, languages)
    split = split or spec.split
    data: BenchmarkData = read_benchmark(
        benchmark, data_dir, images_dir, langs, split, limit, skip_missing, language_names=language_names
    )
    log.info(
        "%s: %d items in %s (%d skipped while reading)", benchmark, len(data.items), ", ".join(langs), len(data.skipped)
    )
    if eval_model is None:
        eval_model = load_for_eval(model_dir, device, quantization, vision_precision)
    skipped = list(data.skipped)
    done = generate_predictions(
        eval_model, data.items, spec.generation, batch_size, skip_missing, skipped, progress, benchmark
    )
    scores, item_scores = score_predictions(benchmark, langs, done)

    out = Path(out)
    pred_path = predictions_path(out)
    lines = [
        json.dumps(
            {
                "key": item.key,
                "lang": item.lang,
                "prompt": item.prompt,
                "prediction": text,
                "references": list(item.references),
                "score": score,
                "images": [str(p) for p in item.images],
            },
            ensure_ascii=False,
        )
        for (item, text), score in zip(done, item_scores)
    ]
    _write_atomic(pred_path, "\n".join(lines) + ("\n" if lines else ""))
    reasons: dict[str, int] = {}
    for entry in skipped:
        reasons[entry["kind"]] = reasons.get(entry["kind"], 0) + 1
        row = scores["languages"].get(entry["lang"])
        if row is not None:
            row["skipped"] = row.get("skipped", 0) + 1
    result = {
        "benchmark": benchmark,
        "title": spec.title,
        "metric": spec.metric,
        "split": split,
        "model": str(model_dir),
        "model_source": eval_model.source,
        "numerics": asdict(eval_model.numerics) if eval_model.numerics else None,
        "generation": asdict(spec.generation),
        "language_names": language_names,
        "limit_per_language": limit,
        **scores,
        "mean_excludes": list(spec.mean_excludes),
        "records": data.records,
        "scored": len(done),
        "skipped": len(skipped),
        "skipped_by_reason": reasons,
        "skipped_records": skipped[:200],
        "predictions": str(pred_path),
    }
    result = _clean(result)
    _write_atomic(out, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def _fmt(value) -> str:
    if isinstance(value, int):
        return str(value)
    return "-" if value is None else f"{value:.2f}"


# Extra per-language fields a benchmark's table shows after the score.
TABLE_EXTRAS = {"pope": ("pope_accuracy", "f1", "yes_ratio"), "chair": ("chair_i", "mentions")}


def format_table(result: dict) -> str:
    """Per-language scores (the paper's numbers sit beside them in ``mblip eval-report --paper``)."""
    extras = TABLE_EXTRAS.get(result["metric"], ())
    head = "".join(f"{name.replace('_', ' '):>14}" for name in extras)
    lines = [f"{result['title']} ({result['model']})", f"{'lang':<12}{'n':>7}{'score':>9}{head}"]
    for lang, row in result["languages"].items():
        tail = "".join(f"{_fmt(row.get(k)):>14}" for k in extras)
        lines.append(f"{lang:<12}{row['n']:>7}{_fmt(row['score']):>9}{tail}")
    over = ",".join(result["mean_over"])
    lines.append(f"{'mean':<12}{'':>7}{_fmt(result['mean']):>9}   over {over or '-'}")
    if result["skipped"]:
        lines.append(f"skipped: {result['skipped']} {result['skipped_by_reason']}")
    lines.append(f"predictions: {result['predictions']}")
    return "\n".join(lines)

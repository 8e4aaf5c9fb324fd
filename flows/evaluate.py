"""The ``evaluate`` flow (one benchmark, per-language artifact) and ``train_and_evaluate`` (train, then
evaluate the final checkpoint on each configured benchmark).

Wiring only: ``model.evaluate.runner.run_evaluation`` does the reading, generation and scoring; the
flow adds a task, the per-language table artifact and the chaining after ``train_flow``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.train import train_flow
from model.evaluate.runner import TABLE_EXTRAS, format_table, run_evaluation


@task(name="evaluate-benchmark", cache_policy=NO_CACHE)
def evaluate_task(
    benchmark: str,
    data: str,
    images: str,
    model: str,
    out: str,
    languages: list[str] | None,
    limit: int | None,
    skip_missing: bool,
    split: str | None,
    batch_size: int,
    device: str,
) -> dict:
    return run_evaluation(
        benchmark,
        data,
        images,
        model,
        out,
        languages=languages,
        limit=limit,
        skip_missing=skip_missing,
        split=split,
        batch_size=batch_size,
        device=device,
        progress=False,
    )


def language_rows(result: dict) -> list[dict]:
    """One artifact row per language (with the benchmark's extra fields, e.g. CHAIRi), then the mean row."""
    extras = TABLE_EXTRAS.get(result["metric"], ())
    rows = [
        {"language": lang, "items": row["n"], "score": row["score"], **{k: row.get(k) for k in extras}}
        for lang, row in result["languages"].items()
    ]
    rows.append({"language": f"mean ({','.join(result['mean_over'])})", "items": result["scored"],
                 "score": result["mean"], **{k: None for k in extras}})
    return rows


@flow(name="evaluate", log_prints=True)
def evaluate_flow(
    benchmark: str,
    data: str,
    images: str,
    model: str,
    out: str,
    languages: list[str] | None = None,
    limit: int | None = None,
    skip_missing: bool = False,
    split: str | None = None,
    batch_size: int = 8,
    device: str = "auto",
) -> dict:
    """Score ``model`` (export, checkpoint or training output) on ``benchmark``; artifact ``eval-<benchmark>``."""
    from prefect.artifacts import create_table_artifact

    result = evaluate_task(
        benchmark, data, images, model, out, languages, limit, skip_missing, split, batch_size, device
    )
    create_table_artifact(
        key=f"eval-{benchmark}",
        table=language_rows(result),
        description=f"{result['title']}: {model}; {result['skipped']} skipped; predictions {result['predictions']}",
    )
    get_run_logger().info("\n%s", format_table(result))
    return result


@flow(name="train-and-evaluate", log_prints=True)
def train_and_evaluate(
    config: str,
    evaluations: list[dict],
    manifest: str | None = None,
    gpus: int = 1,
    output_dir: str | None = None,
    max_steps: int | None = None,
) -> dict:
    """Train (``train_flow``), then run ``evaluate_flow`` on the final checkpoint for each entry of
    ``evaluations`` (``{"benchmark", "data", "images"}`` plus optional ``languages``, ``limit``, ``split``,
    ``skip_missing``, ``batch_size``); results go to ``<checkpoint>/eval/<benchmark>.json``."""
    summary = train_flow(config, manifest=manifest, gpus=gpus, output_dir=output_dir, max_steps=max_steps)
    if not summary.get("checkpoint"):
        raise ValueError(f"training finished without a checkpoint: {summary}")
    checkpoint = Path(summary["checkpoint"])
    results = {}
    for spec in evaluations:
        spec = dict(spec)
        name = spec.pop("benchmark")
        out = str(checkpoint / "eval" / f"{name}.json")
        result = evaluate_flow(name, spec.pop("data"), spec.pop("images"), str(checkpoint), out, **spec)
        results[name] = {
            "mean": result["mean"],
            "languages": {k: v["score"] for k, v in result["languages"].items()},
            "out": out,
        }
    return {"train": summary, "evaluations": results}

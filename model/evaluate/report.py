"""``mblip eval-report``: a run's ``mblip eval`` results as one Markdown table, next to the paper's numbers
when the user gives a paper-numbers file (``paper.load_paper_file``); the model card shows the same table.

Rows: one per benchmark and language (POPE: subset), then the benchmark's mean (over the languages the
paper averages). With paper numbers, two more columns: the paper's value and run minus paper (``-`` where
either is unknown). A benchmark's metric and direction are in its title ("CHAIR ... lower is better").
"""

from __future__ import annotations

import json
from pathlib import Path

from model.evaluate.benchmarks import BENCHMARKS
from model.evaluate.paper import paper_scores

RESULT_KEYS = ("benchmark", "metric", "languages")


def is_result(value) -> bool:
    """Whether a parsed JSON value is an ``mblip eval`` results file (not its predictions, not a trainer file)."""
    return isinstance(value, dict) and all(key in value for key in RESULT_KEYS) and isinstance(value["languages"], dict)


def find_results(run_dir: str | Path) -> tuple[list[dict], list[Path]]:
    """The ``mblip eval --out`` files in ``run_dir`` and ``run_dir/eval`` (ordered by benchmark, then file),
    and the other JSON files found there (listed, not read as results). A file that is not valid JSON is an
    error naming it; no result at all is an error naming the folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such folder (give the folder `mblip eval --out` wrote to)")
    results, others = [], []
    for path in sorted(run_dir.glob("*.json")) + sorted((run_dir / "eval").glob("*.json")):
        if path.name.startswith("."):
            continue  # a results file being written (runner: .tmp-<name>)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if is_result(value):
            results.append({**value, "_file": str(path)})
        else:
            others.append(path)
    if not results:
        raise ValueError(f"{run_dir}: no `mblip eval` results file (*.json with benchmark, metric, languages)")
    order = {name: i for i, name in enumerate(BENCHMARKS)}
    results.sort(key=lambda r: (order.get(r["benchmark"], len(order)), r["_file"]))
    return results, others


def report_rows(results: list[dict], paper: dict | None = None) -> list[dict]:
    """One row per (result, language) and one per result's mean: title, split, lang, n, score, paper, diff."""
    rows = []
    for result in results:
        known = paper_scores(result["benchmark"], paper)
        base = {"benchmark": result["benchmark"], "title": result.get("title", result["benchmark"]),
                "split": result.get("split") or ""}
        for lang, row in result["languages"].items():
            rows.append({**base, "lang": lang, "n": row.get("n"), "score": row.get("score"),
                         "paper": known["scores"].get(lang)})
        if result.get("mean") is not None:
            over = ", ".join(result.get("mean_over") or [])
            rows.append({**base, "lang": f"mean ({over})" if over else "mean", "n": None, "score": result["mean"],
                         "paper": known["mean"]})
    for row in rows:
        both = row["score"] is not None and row["paper"] is not None
        row["diff"] = row["score"] - row["paper"] if both else None
    return rows


def _cell(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def render_markdown(results: list[dict], paper: dict | None = None) -> str:
    """The Markdown table (no trailing newline); with ``paper``, its columns and the sources it names."""
    head = ["benchmark", "split", "language", "n", "score"] + (["paper", "run - paper"] if paper is not None else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in report_rows(results, paper):
        cells = [row["title"], row["split"], row["lang"], _cell(row["n"]), _cell(row["score"])]
        if paper is not None:
            cells += [_cell(row["paper"]), _cell(row["diff"], signed=True)]
        lines.append("| " + " | ".join(cells) + " |")
    sources = sorted({entry["source"] for name, entry in (paper or {}).items()
                      if entry.get("source") and any(r["benchmark"] == name for r in results)})
    if sources:
        lines += ["", "Paper numbers: " + "; ".join(sources) + "."]
    return "\n".join(lines)

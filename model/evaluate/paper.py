"""The paper's published numbers (package data ``paper_scores.json``), for the side-by-side table."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def load_paper_scores() -> dict:
    text = resources.files("model.evaluate").joinpath("paper_scores.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def paper_scores(benchmark: str, table: dict | None = None) -> dict:
    """{"scores": {lang: value}, "mean": value|None, "source": str|None} for ``benchmark``."""
    entry = (table if table is not None else load_paper_scores()).get(benchmark) or {}
    return {"scores": dict(entry.get("scores") or {}), "mean": entry.get("mean"), "source": entry.get("source")}

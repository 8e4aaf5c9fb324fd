"""Published numbers to put next to a run's scores: a paper-numbers file the user gives (the project ships
none: the reference code states no scores, and numbers typed into the package would be unsourced).

The file is JSON, one entry per benchmark (keys starting with ``_`` are comments)::

    {"xm3600": {"source": "mBLIP, Table 1 (mT0-XL)", "scores": {"de": 36.2, "fr": 40.1}, "mean": null},
     "xgqa": {"scores": {"de": 40.2}}}

``scores`` maps the benchmark's language codes (POPE: its subsets) to numbers or null; ``mean`` and
``source`` are optional. Values are on the scale ``mblip eval`` reports (CIDEr x100, accuracy in %). A
benchmark or language the project does not have, or a value that is not a number, is an error naming the
file and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from model.evaluate.benchmarks import BENCHMARKS


class PaperFileError(ValueError):
    """A paper-numbers file that does not have the documented shape (names the file and the field)."""


def _number(path: Path, where: str, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PaperFileError(f"{path}: field {where!r} is {value!r}, not a number or null")
    return float(value)


def _entry(path: Path, name: str, entry) -> dict:
    if name not in BENCHMARKS:
        raise PaperFileError(f"{path}: field {name!r} is not a benchmark; benchmarks: {', '.join(BENCHMARKS)}")
    if not isinstance(entry, dict):
        raise PaperFileError(f"{path}: field {name!r} is not an object with 'scores'")
    unknown = sorted(set(entry) - {"scores", "mean", "source"})
    if unknown:
        raise PaperFileError(f"{path}: field '{name}.{unknown[0]}' is unknown; an entry has scores, mean, source")
    scores = entry.get("scores") or {}
    if not isinstance(scores, dict):
        raise PaperFileError(f"{path}: field '{name}.scores' is not an object (language -> number)")
    languages = BENCHMARKS[name].languages
    for lang in scores:
        if lang not in languages:
            raise PaperFileError(f"{path}: field '{name}.scores.{lang}': {name} has no language {lang!r}; "
                                 f"it has {', '.join(languages)}")
    source = entry.get("source")
    if source is not None and not isinstance(source, str):
        raise PaperFileError(f"{path}: field '{name}.source' is not a string")
    return {
        "scores": {lang: _number(path, f"{name}.scores.{lang}", v) for lang, v in scores.items()},
        "mean": _number(path, f"{name}.mean", entry.get("mean")),
        "source": source,
    }


def load_paper_file(path: str | Path) -> dict[str, dict]:
    """{benchmark: {"scores": {lang: value|None}, "mean": value|None, "source": str|None}} from ``path``."""
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PaperFileError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(table, dict):
        raise PaperFileError(f"{path}: expected an object of benchmarks (benchmark -> {{'scores': ...}})")
    return {name: _entry(path, name, entry) for name, entry in table.items() if not name.startswith("_")}


def paper_scores(benchmark: str, table: dict | None) -> dict:
    """{"scores": {lang: value}, "mean": value|None, "source": str|None} for ``benchmark`` (empty without a table)."""
    entry = (table or {}).get(benchmark) or {}
    return {"scores": dict(entry.get("scores") or {}), "mean": entry.get("mean"), "source": entry.get("source")}

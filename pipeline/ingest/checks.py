"""Input checks: the texts of every row a reader produced, checked before the row is kept.

The readers already refuse what is not text (a missing or mistyped field, empty text, a lone surrogate;
control characters are removed: ``pipeline/ingest/base.py``). These checks catch text that is well
formed but hostile or absurd. They apply to every row, whatever language it is later assigned: a row
assigned English is kept as it is, with no translation check after it, so nothing later would catch it.
A row that fails is quarantined with the field and the reason (the card counts them per source, field
and reason). In the order they are checked, with the knob of each (``input_checks:`` in the run config):

- ``too_long``: a text longer than its task's cap (``max_chars``), e.g. a 100,000-character caption or a
  50,000-character answer. Longer inputs would be cut by the translator (``translation.max_input_tokens``,
  about 1,000 English characters) and kept whole when the row stays English.
- ``no_visible_text``: fewer than ``min_visible`` letters or digits: text made only of zero-width or
  bidirectional controls, combining marks, emoji or punctuation.
- ``markup``: an HTML/XML tag, comment, CDATA section or declaration (``<script>``, ``<b>``, ``<!--``): scraped
  markup, never caption text (``reject_markup``).
- ``bidi_override``: U+202D or U+202E, which display the text reversed (spoofing; ``reject_bidi_override``).
  Embeddings, isolates and the left-to-right and right-to-left marks stay: Arabic and Hebrew text uses them.
- ``combining_marks``: more than ``max_mark_run`` combining marks in a row ("Zalgo" text). The most in
  ordinary text of any script is about 4 (Tibetan stacks, Hebrew with vowel points and cantillation).
- ``wrong_script``: under ``min_script_share`` of the letters in the source language's script: Latin for
  English (an Arabic or Hebrew caption in an English source); a row whose source fixes its language
  (``preset_lang``: ImageNet class names, the released mBLIP file) may use that language's script or Latin.
  Digits, punctuation and emoji count for no script (``pipeline/filters/scripts.py``).

``text_en``, ``context_en`` and ``answer_en`` get every check; each of a VQA row's human answers
(``answers_en``, carried as they are) gets the length cap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import polars as pl
from pydantic import Field, field_validator

from pipeline.filters.scripts import SCRIPT_UNICODE_NAMES, script_share
from pipeline.frozen import Frozen
from pipeline.ingest.base import RAW_LIMIT, ReadBatch
from pipeline.languages import UnknownLanguageError, get_language
from pipeline.schema import (
    QUARANTINE_SCHEMA, TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN, TASK_CAPTION, TASK_CLASSIFY, TASK_DECIDE, TASK_INSTRUCT,
    TASK_LLAVA, TASK_MATCH, TASK_VQA, TASK_VQG,
)

REASON_TOO_LONG = "too_long"
REASON_NO_VISIBLE_TEXT = "no_visible_text"
REASON_MARKUP = "markup"
REASON_BIDI_OVERRIDE = "bidi_override"
REASON_COMBINING_MARKS = "combining_marks"
REASON_WRONG_SCRIPT = "wrong_script"

# Characters per text, by task: several times the longest text of the published sources (COCO captions
# and VQAv2 questions stay under 300 characters, LLaVA answers of at most 3 sentences under 1,500).
DEFAULT_MAX_CHARS: dict[str, int | None] = {
    TASK_CAPTION: 1_000, TASK_VQA: 1_000, TASK_VQG: 1_000, TASK_MATCH: 1_000, TASK_CLASSIFY: 300, TASK_DECIDE: 300,
    TASK_AOKVQA_EXPLAIN: 2_000, TASK_AOKVQA_COT: 2_000, TASK_LLAVA: 4_000, TASK_INSTRUCT: 4_000,
}
CHECKED_FIELDS = ("text_en", "context_en", "answer_en")  # every check; answers_en: the length cap

_MARKUP = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>|<!--|<!\[CDATA\[|<![A-Za-z]|<\?[A-Za-z]")
_BIDI_OVERRIDE = re.compile("[\u202d\u202e]")


class InputChecks(Frozen):
    """What a row's texts must be to become a row (see the module docstring for each check's reason)."""

    # Characters per text, per task; a task not listed gets
    # `other_max_chars`. Entries given in a config replace the default of their task only; null = no cap.
    max_chars: dict[str, int | None] = Field(default_factory=lambda: dict(DEFAULT_MAX_CHARS))
    other_max_chars: int | None = Field(4_000, gt=0)
    # Letters or digits (any script) each text needs; 0 = off.
    min_visible: int = Field(1, ge=0)
    # Reject HTML/XML tags, comments and declarations; false = off.
    reject_markup: bool = True
    # Reject the bidirectional overrides U+202D/U+202E; false = off.
    reject_bidi_override: bool = True
    # Most combining marks in a row; null = off.
    max_mark_run: int | None = Field(5, ge=1)
    # Share (0-1) of a text's letters that must be in its source language's script; null = off. Lower keeps
    # more English captions quoting other scripts (a sign's text), higher catches more mixed text.
    min_script_share: float | None = Field(0.5, ge=0, le=1)

    @field_validator("max_chars", mode="before")
    @classmethod
    def _over_defaults(cls, value):
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(DEFAULT_MAX_CHARS))
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; valid: {sorted(DEFAULT_MAX_CHARS)}")
        for task, cap in value.items():
            if cap is not None and (not isinstance(cap, int) or cap < 1):
                raise ValueError(f"{task}: a cap is a positive number of characters or null, got {cap!r}")
        return {**DEFAULT_MAX_CHARS, **value}

    def cap(self, task: str | None) -> int | None:
        """The most characters a text of ``task`` may have (None: no cap)."""
        return self.max_chars[task] if task in self.max_chars else self.other_max_chars


@lru_cache(maxsize=16)
def _mark_run(limit: int):
    import regex

    return regex.compile(r"\p{M}{%d,}" % (limit + 1))


@lru_cache(maxsize=None)
def _allowed_scripts(preset_lang: str | None) -> tuple[str, ...]:
    """Scripts a row's text may be written in: Latin (English), plus its preset language's script."""
    if not preset_lang:
        return ("Latn",)
    try:
        script = get_language(preset_lang).nllb.partition("_")[2]
    except UnknownLanguageError:
        return ("Latn",)
    return ("Latn",) if script == "Latn" or script not in SCRIPT_UNICODE_NAMES else ("Latn", script)


def text_problem(text: str, task: str | None, checks: InputChecks, preset_lang: str | None = None) -> str | None:
    """The first check ``text`` fails, as a quarantine reason (None when it passes every check)."""
    cap = checks.cap(task)
    if cap is not None and len(text) > cap:
        return f"{REASON_TOO_LONG}: over {cap:,} characters ({task or 'any task'})"
    if checks.min_visible and sum(ch.isalnum() for ch in text) < checks.min_visible:
        least = f"fewer than {checks.min_visible} letters or digits" if checks.min_visible > 1 else "no letter or digit"
        return f"{REASON_NO_VISIBLE_TEXT}: {least}"
    if checks.reject_markup and _MARKUP.search(text):
        return f"{REASON_MARKUP}: an HTML/XML tag, comment or declaration"
    if checks.reject_bidi_override and _BIDI_OVERRIDE.search(text):
        return f"{REASON_BIDI_OVERRIDE}: U+202D/U+202E display the text reversed"
    if checks.max_mark_run is not None and _mark_run(checks.max_mark_run).search(text):
        return f"{REASON_COMBINING_MARKS}: more than {checks.max_mark_run} combining marks in a row"
    if checks.min_script_share is not None:
        scripts = _allowed_scripts(preset_lang)
        shares = [script_share(text, s) for s in scripts]
        if shares[0] is not None and sum(shares) < checks.min_script_share:
            share = f"{checks.min_script_share:.0%}"
            return f"{REASON_WRONG_SCRIPT}: under {share} of its letters in {' or '.join(scripts)}"
    return None


def row_problem(row: dict, checks: InputChecks) -> tuple[str, str] | None:
    """``(field, reason)`` of the first text of ``row`` that fails a check, None when all pass."""
    task, preset = row.get("task"), row.get("preset_lang")
    for name in CHECKED_FIELDS:
        text = row.get(name)
        if text is not None and (reason := text_problem(text, task, checks, preset)) is not None:
            return name, reason
    cap = checks.cap(task)
    for i, answer in enumerate(row.get("answers_en") or ()):
        if cap is not None and answer is not None and len(answer) > cap:
            return f"answers_en[{i}]", f"{REASON_TOO_LONG}: over {cap:,} characters ({task or 'any task'})"
    return None


def _raw(row: dict) -> str:
    """The row's id and texts as JSON, for the quarantine's ``raw`` column (cut to ``RAW_LIMIT``)."""
    keep = ("source_record_id", "image_id", "task", "text_en", "context_en", "answer_en", "preset_lang")
    return json.dumps({k: row.get(k) for k in keep if row.get(k) is not None}, ensure_ascii=False)[:RAW_LIMIT]


def check_batch(batch: ReadBatch, checks: InputChecks) -> ReadBatch:
    """``batch`` with the rows that fail an input check moved to its quarantine (field and reason each)."""
    rows = batch.rows
    if rows.height == 0:
        return batch
    columns = [c for c in ("source", "source_file", "source_record_id", "image_id", "task", *CHECKED_FIELDS,
                           "answers_en", "preset_lang") if c in rows.columns]
    problems = [row_problem(row, checks) for row in rows.select(columns).iter_rows(named=True)]
    bad_index = [i for i, p in enumerate(problems) if p is not None]
    if not bad_index:
        return batch
    bad_rows = rows.select(columns)[bad_index].to_dicts()
    bad = pl.DataFrame(
        {
            "source": [r["source"] for r in bad_rows],
            "source_file": [r["source_file"] for r in bad_rows],
            "record_index": [None] * len(bad_rows),  # checked after parsing: the id names the record
            "record_id": [r["source_record_id"] for r in bad_rows],
            "field": [problems[i][0] for i in bad_index],
            "reason": [problems[i][1] for i in bad_index],
            "raw": [_raw(r) for r in bad_rows],
        },
        schema=QUARANTINE_SCHEMA,
    )
    keep = pl.Series([p is None for p in problems])
    return ReadBatch(batch.source, rows.filter(keep), pl.concat([batch.quarantine, bad]), batch.counters)


@dataclass
class CheckedReader:
    """A reader whose batches go through ``check_batch``: what the ingest stage reads a source with."""

    reader: Any
    checks: InputChecks

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def stats(self):
        return getattr(self.reader, "stats", None)

    def iter_batches(self, batch_size: int) -> Iterator[ReadBatch]:
        for batch in self.reader.iter_batches(batch_size):
            yield check_batch(batch, self.checks)

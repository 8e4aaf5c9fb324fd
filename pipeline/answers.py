"""VQA answers, translated as a vocabulary and kept only when they survive the round trip.

mBLIP's answer rule (Geigle et al. 2024, Sec. 3.1; the reference's ``data/vqa/translate_labels_google.py``):
only answers seen at least ``min_count`` (15) times in their source, without digits and longer than
one character, are translated; the rest stay English, ``answer_translated`` is false and the prompt
asks for an English answer (``pipeline/templates.py``: the VQA templates naming English). Short answers
repeat heavily ("yes", "white"), so per target language:

- every distinct translatable answer is translated once, then translated back to English, and the
  translation is kept only when the back-translation matches the English answer. ``match``:
  ``normalized`` (the default; the VQA normalisation of both sides: case, punctuation, English
  articles, spaces) or ``exact`` (the reference: equal up to case). Deliberate: NLLB's back-translation
  of a one-word answer often differs only by an article or a full stop ("The dog." for "dog");
- "yes" and "no" are a pair (``pair_yes_no``, default on): kept only when both round-trip, so a
  language never mixes a translated "yes" with an English "no". Deliberate; off = each on its own,
  as the reference (which then could train "ja" next to "no" in one language).

The reference translated with a web service; here NLLB, as every other text (no knob: no web MT).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from pipeline.languages import SOURCE_NLLB
from pipeline.nllb.engine import clean_source
from pipeline.schema import TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN, TASK_MATCH, TASK_VQA, TASK_VQG
from pipeline.translate import TranslationStats, translate_many

KIND_NUMBER = "number"
KIND_YES_NO = "yes_no"
KIND_OTHER = "other"
YES_NO = ("yes", "no")
MIN_COUNT = 15  # the reference's: answers seen fewer times in the source stay English
MATCH_MODES = ("normalized", "exact")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,:/]\d+)*%?")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}¿¡。、，．！？]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Tasks whose short answer is translated by this rule (VQA: the target; VQG, A-OKVQA: in the prompt).
ANSWER_TASKS = frozenset({TASK_VQA, TASK_VQG, TASK_AOKVQA_EXPLAIN, TASK_AOKVQA_COT})


@dataclass(frozen=True)
class AnswerSettings:
    """The answer rule's knobs (``AnswerConfig`` in pipeline/config.py) and the run's answer counts."""

    min_count: int = MIN_COUNT  # an answer is translated when seen this often in its source; 0 = no count rule
    match: str = "normalized"  # round-trip comparison (``MATCH_MODES``)
    pair_yes_no: bool = True  # yes/no translated together or not at all, per language
    # source -> its answers seen at least ``min_count`` times (``frequent_answers``); None = not counted
    # (every answer passes the count rule: tests, benchmarks, single chunks)
    frequent: Mapping[str, frozenset[str]] | None = None


def count_answers(chunks: Mapping[str, Iterable[str]]) -> dict[str, Counter]:
    """Source -> how often each answer occurs in its rows of an answer task (ingested English chunks)."""
    counts: dict[str, Counter] = {}
    for source, paths in chunks.items():
        counter: Counter = Counter()
        for path in paths:
            frame = pl.read_parquet(path, columns=["task", "answer_en"])
            frame = frame.filter(pl.col("task").is_in(list(ANSWER_TASKS)) & pl.col("answer_en").is_not_null())
            counter.update(frame["answer_en"].to_list())
        if counter:
            counts[source] = counter
    return counts


def frequent_answers(chunks: Mapping[str, Iterable[str]], min_count: int) -> dict[str, frozenset[str]]:
    """Source -> the answers seen at least ``min_count`` times in it (what the rule may translate)."""
    return {source: frozenset(a for a, n in counter.items() if n >= min_count)
            for source, counter in sorted(count_answers(chunks).items())}


def answer_key(translation_key: str, settings: AnswerSettings) -> str:
    """The translation key extended by the answer rule: its knobs and the run's frequent answers (a source
    whose counts move an answer across ``min_count`` reprocesses its chunks). Unchanged at the defaults
    with nothing counted, so keys made without the rule's counts keep their value."""
    if settings == AnswerSettings():
        return translation_key
    frequent = {k: sorted(v) for k, v in sorted((settings.frequent or {}).items())}
    blob = json.dumps({"key": translation_key, "min_count": settings.min_count, "match": settings.match,
                       "pair_yes_no": settings.pair_yes_no, "frequent": frequent}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def english_answer_coin(example_id: str) -> float:
    """The answer-language coin of a row, a stable number in [0, 1) from its id: the row trains on the
    English answer when it is below ``english_answer_prob`` (mBLIP: 0.5). The trainer (``model/data.py``,
    ``data.english_answer_prob``) and ``mblip export`` flip the same coin, so both give the same rows."""
    return int.from_bytes(hashlib.sha1(f"answer\x1f{example_id}".encode()).digest()[:8], "big") / 2**64


def translatable(answer: str | None) -> bool:
    """The reference's shape rule: no digit, longer than one character (counts are checked apart)."""
    text = clean_source(answer or "")
    return len(text) > 1 and not _DIGIT.search(text)


def normalize_answer(text: str | None) -> str:
    """VQA-style answer normalisation: lower case, no punctuation, no English articles, single spaces."""
    text = clean_source(text).lower()
    text = _PUNCT.sub(" ", text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_kind(answer: str) -> str:
    text = clean_source(answer).lower()
    if _NUMBER.fullmatch(text):
        return KIND_NUMBER
    if normalize_answer(text) in YES_NO:
        return KIND_YES_NO
    return KIND_OTHER


def round_trips(answer: str, back: str, match: str = "normalized") -> bool:
    """Whether ``back`` (the back-translation) gives ``answer`` again under ``match`` (``MATCH_MODES``)."""
    if match == "exact":
        return clean_source(back).strip().lower() == clean_source(answer).strip().lower()
    if match != "normalized":
        raise ValueError(f"unknown answers.match {match!r}; use one of {', '.join(MATCH_MODES)}")
    return normalize_answer(back) == normalize_answer(answer)


def accept_answers(
    translator, pairs: list[tuple[str, str]], src_lang: str = SOURCE_NLLB, stats: TranslationStats | None = None,
    settings: AnswerSettings = AnswerSettings(),
) -> dict[tuple[str, str], str | None]:
    """(English answer, target language) -> accepted translation, or None when the English answer stays.

    ``pairs`` are row-level (repeats are counted in ``stats`` and translated once). Answers with a digit
    or of one character are never sent (they stay English). All languages go through one forward and
    one backward call of the (cached, deduplicated) translator. The count rule is applied by the caller.
    """
    accepted: dict[tuple[str, str], str | None] = {}
    rows = []
    for answer, lang in pairs:
        if not answer or not clean_source(answer):
            continue
        if translatable(answer):
            rows.append((answer, lang))
        else:
            accepted[(answer, lang)] = None
    if not rows:
        return accepted
    results = translate_many(translator, [a for a, _ in rows], src_lang, [g for _, g in rows], stats)
    forward = dict(zip(rows, (r.text for r in results)))
    keys = list(forward)
    back = translate_many(translator, [forward[k] for k in keys], [g for _, g in keys], src_lang, stats)
    for key, bwd in zip(keys, back):
        fwd = forward[key]
        ok = bool(fwd.strip()) and round_trips(key[0], bwd.text, settings.match)
        accepted[key] = clean_source(fwd) if ok else None
    if settings.pair_yes_no:  # yes/no are a pair: both translated, or both English (per language)
        for lang in {g for _, g in keys}:
            pair = [k for k in keys if k[1] == lang and answer_kind(k[0]) == KIND_YES_NO]
            if any(accepted[k] is None for k in pair):
                for k in pair:
                    accepted[k] = None
    return accepted


def _counted(source: str | None, answer: str, settings: AnswerSettings) -> bool:
    """The count rule: ``answer`` seen at least ``min_count`` times in ``source`` (always true uncounted)."""
    if settings.frequent is None or settings.min_count <= 1:
        return True
    return answer in settings.frequent.get(source or "", frozenset())


def translate_answers(
    frame: pl.DataFrame, translator, src_lang: str = SOURCE_NLLB, stats: TranslationStats | None = None,
    settings: AnswerSettings = AnswerSettings(),
) -> pl.DataFrame:
    """Add ``answer_tgt`` and ``answer_translated`` (null for rows without an answer).

    ``answer_translated`` is true when ``answer_tgt`` is in the target language, false when the English
    answer was kept (too rare in its source, a digit or one character, or no round trip).
    """
    if "answer_en" not in frame.columns:
        return frame
    tasks = frame["task"].to_list() if "task" in frame.columns else [TASK_VQA] * frame.height
    sources = frame["source"].to_list() if "source" in frame.columns else [None] * frame.height
    langs, answers = frame["lang_nllb"].to_list(), frame["answer_en"].to_list()
    pairs = [
        (answer, lang) for task, lang, answer, source in zip(tasks, langs, answers, sources)
        if answer is not None and task in ANSWER_TASKS and lang != src_lang and _counted(source, answer, settings)
    ]
    accepted = accept_answers(translator, pairs, src_lang, stats, settings)
    out_text, out_flag = [], []
    for task, lang, answer, source in zip(tasks, langs, answers, sources):
        if answer is not None and task == TASK_MATCH:  # matching: the yes/no answer stays English
            out_text.append(answer)
            out_flag.append(False)
        elif answer is None or task not in ANSWER_TASKS:
            out_text.append(None)
            out_flag.append(None)
        elif lang == src_lang:
            out_text.append(answer)
            out_flag.append(True)
        else:
            translated = accepted.get((answer, lang)) if _counted(source, answer, settings) else None
            out_text.append(translated if translated is not None else answer)
            out_flag.append(translated is not None)
    return frame.with_columns(
        pl.Series("answer_tgt", out_text, dtype=pl.String), pl.Series("answer_translated", out_flag, dtype=pl.Boolean)
    )

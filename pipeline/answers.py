"""VQA answers, translated as a vocabulary and kept only when they survive the round trip.

Short answers repeat heavily ("yes", "2", "white"), and a one-word answer translated out of context
is often wrong or inflated into a sentence. So, per target language:

- numbers ("2", "3:30", "1.5") are never sent to the model: digits are understood in every language
  and stay as they are (the reference kept no answer with digits; keeping them as digits loses none);
- every other distinct answer is translated once, then translated back to English, and the
  translation is kept only when the back-translation equals the English answer (after answer
  normalisation): the mBLIP rule (Geigle et al. 2024, Sec. 3.1);
- "yes" and "no" are a pair: kept only when both round-trip, so a language never mixes a translated
  "yes" with an English "no";
- otherwise the example keeps the English answer, ``answer_translated`` is false, and its prompt asks
  for an English answer (see ``pipeline/templates.py``).
"""

from __future__ import annotations

import re
import string

import polars as pl

from pipeline.languages import SOURCE_NLLB
from pipeline.nllb.engine import clean_source
from pipeline.schema import TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN, TASK_MATCH, TASK_VQA, TASK_VQG
from pipeline.translate import TranslationStats, translate_many

KIND_NUMBER = "number"
KIND_YES_NO = "yes_no"
KIND_OTHER = "other"
YES_NO = ("yes", "no")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,:/]\d+)*%?")
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}¿¡。、，．！？]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Tasks whose short answer is translated by this rule (VQA: the target; VQG, A-OKVQA: in the prompt).
ANSWER_TASKS = frozenset({TASK_VQA, TASK_VQG, TASK_AOKVQA_EXPLAIN, TASK_AOKVQA_COT})


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


def accept_answers(
    translator, pairs: list[tuple[str, str]], src_lang: str = SOURCE_NLLB, stats: TranslationStats | None = None
) -> dict[tuple[str, str], str | None]:
    """(English answer, target language) -> accepted translation, or None when the English answer stays.

    ``pairs`` are row-level (repeats are counted in ``stats`` and translated once). Numbers map to
    themselves. All languages go through one forward and one backward call of the (cached,
    deduplicated) translator.
    """
    accepted: dict[tuple[str, str], str | None] = {}
    rows = []
    for answer, lang in pairs:
        if not answer or not clean_source(answer):
            continue
        if answer_kind(answer) == KIND_NUMBER:
            accepted[(answer, lang)] = clean_source(answer)
        else:
            rows.append((answer, lang))
    if not rows:
        return accepted
    results = translate_many(translator, [a for a, _ in rows], src_lang, [g for _, g in rows], stats)
    forward = dict(zip(rows, (r.text for r in results)))
    keys = list(forward)
    back = translate_many(translator, [forward[k] for k in keys], [g for _, g in keys], src_lang, stats)
    for key, bwd in zip(keys, back):
        fwd = forward[key]
        ok = bool(fwd.strip()) and normalize_answer(bwd.text) == normalize_answer(key[0])
        accepted[key] = clean_source(fwd) if ok else None
    # yes/no are a pair: both translated, or both English (per language).
    for lang in {g for _, g in keys}:
        pair = [k for k in keys if k[1] == lang and answer_kind(k[0]) == KIND_YES_NO]
        if any(accepted[k] is None for k in pair):
            for k in pair:
                accepted[k] = None
    return accepted


def translate_answers(
    frame: pl.DataFrame, translator, src_lang: str = SOURCE_NLLB, stats: TranslationStats | None = None
) -> pl.DataFrame:
    """Add ``answer_tgt`` and ``answer_translated`` (null for rows without an answer).

    ``answer_translated`` is true when ``answer_tgt`` is in the target language (or is a number,
    which every language shares), false when the English answer was kept.
    """
    if "answer_en" not in frame.columns:
        return frame
    tasks = frame["task"].to_list() if "task" in frame.columns else [TASK_VQA] * frame.height
    langs, answers = frame["lang_nllb"].to_list(), frame["answer_en"].to_list()
    pairs = [
        (answer, lang) for task, lang, answer in zip(tasks, langs, answers)
        if answer is not None and task in ANSWER_TASKS and lang != src_lang
    ]
    accepted = accept_answers(translator, pairs, src_lang, stats)
    out_text, out_flag = [], []
    for task, lang, answer in zip(tasks, langs, answers):
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
            translated = accepted.get((answer, lang))
            out_text.append(translated if translated is not None else answer)
            out_flag.append(translated is not None)
    return frame.with_columns(
        pl.Series("answer_tgt", out_text, dtype=pl.String), pl.Series("answer_translated", out_flag, dtype=pl.Boolean)
    )

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

from pipeline.nllb.engine import clean_source
from pipeline.schema import TASK_VQA
from pipeline.translate import SOURCE_NLLB, TranslationStats, translate_many

KIND_NUMBER = "number"
KIND_YES_NO = "yes_no"
KIND_OTHER = "other"
YES_NO = ("yes", "no")
_NUMBER = re.compile(r"[+-]?\d+(?:[.,:/]\d+)*%?")
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}¿¡。、，．！？]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


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


def translate_answer_vocabulary(
    translator, answers: list[str], tgt_lang: str, src_lang: str = SOURCE_NLLB, stats: TranslationStats | None = None
) -> dict[str, str | None]:
    """Distinct English answer -> accepted translation, or None when the English answer must stay.

    Numbers map to themselves. Forward and back translations go through the (cached, deduplicated)
    translator, so each distinct answer costs two model calls per language at most once per cache.
    """
    accepted: dict[str, str | None] = {}
    rows = []  # row-level answers for the model: repeats are counted (dedup factor), translated once
    for answer in answers:
        if not answer or not clean_source(answer):
            continue
        if answer_kind(answer) == KIND_NUMBER:
            accepted[answer] = clean_source(answer)
        else:
            rows.append(answer)
    if not rows:
        return accepted
    forward = dict(zip(rows, (r.text for r in translate_many(translator, rows, src_lang, tgt_lang, stats))))
    words = list(forward)
    back = [r.text for r in translate_many(translator, [forward[w] for w in words], tgt_lang, src_lang, stats)]
    for answer, bwd in zip(words, back):
        fwd = forward[answer]
        ok = bool(fwd.strip()) and normalize_answer(bwd) == normalize_answer(answer)
        accepted[answer] = clean_source(fwd) if ok else None
    # yes/no are a pair: both translated, or both English.
    pair = [a for a in words if answer_kind(a) == KIND_YES_NO]
    if pair and any(accepted[a] is None for a in pair):
        for a in pair:
            accepted[a] = None
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
    by_lang: dict[str, list[str]] = {}
    for task, lang, answer in zip(tasks, langs, answers):
        if answer is not None and task == TASK_VQA and lang != src_lang:
            by_lang.setdefault(lang, []).append(answer)
    vocab = {lang: translate_answer_vocabulary(translator, items, lang, src_lang, stats) for lang, items in by_lang.items()}
    out_text, out_flag = [], []
    for task, lang, answer in zip(tasks, langs, answers):
        if answer is None or task != TASK_VQA:
            out_text.append(None)
            out_flag.append(None)
        elif lang == src_lang:
            out_text.append(answer)
            out_flag.append(True)
        else:
            translated = vocab[lang].get(answer)
            out_text.append(translated if translated is not None else answer)
            out_flag.append(translated is not None)
    return frame.with_columns(
        pl.Series("answer_tgt", out_text, dtype=pl.String), pl.Series("answer_translated", out_flag, dtype=pl.Boolean)
    )

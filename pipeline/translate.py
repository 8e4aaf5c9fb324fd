"""Translate stage: English text fields of a batch into each row's target language.

Each distinct (text, target language) in the batch is translated once and fanned back out; rows
assigned to English keep their text untranslated.
"""

from __future__ import annotations

import polars as pl

from pipeline.languages import SOURCE_LANGUAGE, get_language

SOURCE_NLLB = get_language(SOURCE_LANGUAGE).nllb

# (English column, translated column) pairs the stage fills.
TRANSLATED_FIELDS: tuple[tuple[str, str], ...] = (("text_en", "text_tgt"), ("answer_en", "answer_tgt"))


def translate_texts(translator, texts: list[str], src_lang: str, tgt_lang: str) -> dict[str, str]:
    """Distinct non-empty ``texts`` -> translation (one engine call per language)."""
    unique = sorted({t for t in texts if t and t.strip()})
    if not unique:
        return {}
    return {t: r.text for t, r in zip(unique, translator.translate(unique, src_lang, tgt_lang))}


def translate_frame(
    frame: pl.DataFrame,
    translator,
    fields: tuple[tuple[str, str], ...] = TRANSLATED_FIELDS,
    src_lang: str = SOURCE_NLLB,
) -> pl.DataFrame:
    """Add the translated columns of ``fields`` for every row (``lang_nllb`` is the target)."""
    out = frame
    for src_col, tgt_col in fields:
        if src_col not in frame.columns:
            continue
        mapping: dict[tuple[str, str], str] = {}
        for (lang_nllb,), group in frame.group_by(["lang_nllb"], maintain_order=True):
            texts = group[src_col].drop_nulls().to_list()
            if lang_nllb == src_lang:
                mapping.update({(lang_nllb, t): t for t in texts})
                continue
            for text, translation in translate_texts(translator, texts, src_lang, lang_nllb).items():
                mapping[(lang_nllb, text)] = translation
        values = [
            None if text is None else mapping.get((lang, text), "")
            for lang, text in zip(frame["lang_nllb"].to_list(), frame[src_col].to_list())
        ]
        out = out.with_columns(pl.Series(tgt_col, values, dtype=pl.String))
    return out

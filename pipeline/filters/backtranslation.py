"""Back-translation signal: translate each translation back to English and score it with chrF++.

chrF++ (character n-grams up to 6 plus word uni- and bigrams; Popović 2017) against the English
source is robust on short texts where BLEU is mostly zero. A low score means meaning was lost,
whichever way (dropped content, hallucination, wrong language). The reference mBLIP data had no such
filter for captions or questions; it used exact back-translation match for VQA answers only.
"""

from __future__ import annotations

import polars as pl

from pipeline.languages import SOURCE_NLLB
from pipeline.translate import translate_texts


def backtranslate_frame(
    frame: pl.DataFrame, translator, text_col: str = "text_tgt", out_col: str = "backtranslation_en"
) -> pl.DataFrame:
    """Add ``out_col``: ``text_col`` translated from each row's ``lang_nllb`` back to English."""
    mapping: dict[tuple[str, str], str] = {}
    for (lang_nllb,), group in frame.group_by(["lang_nllb"], maintain_order=True):
        texts = group[text_col].drop_nulls().to_list()
        if lang_nllb == SOURCE_NLLB:
            mapping.update({(lang_nllb, t): t for t in texts})
            continue
        for text, back in translate_texts(translator, texts, lang_nllb, SOURCE_NLLB).items():
            mapping[(lang_nllb, text)] = back
    values = [
        None if text is None else mapping.get((lang, text), "")
        for lang, text in zip(frame["lang_nllb"].to_list(), frame[text_col].to_list())
    ]
    return frame.with_columns(pl.Series(out_col, values, dtype=pl.String))

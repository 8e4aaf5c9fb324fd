"""Sentence counting for length limits, with spaCy's rule-based ``sentencizer`` on a blank English
pipeline: no model download, so it works offline. Its tokenizer keeps abbreviations ("e.g.",
"Dr.") and numbers ("3.5") whole, so it does not split there as counting periods would (the mBLIP
reference dropped LLaVA answers with more than 3 periods).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _pipeline():
    try:
        import spacy
    except ImportError as e:  # pragma: no cover - spaCy is a core dependency
        raise ImportError("counting sentences needs spaCy: pip install spacy") from e
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def count_sentences(text: str) -> int:
    """Number of sentences in ``text`` (0 for blank text)."""
    if not text or not text.strip():
        return 0
    return sum(1 for s in _pipeline()(text).sents if s.text.strip())

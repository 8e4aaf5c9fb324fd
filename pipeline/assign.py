"""Deterministic target-language assignment.

mBLIP translates each English example into exactly one language, with languages in proportion to
their mC4 share (Geigle et al. 2024, Sec. 3.1); the reference did it by shuffling and slicing, so
adding data reshuffled everything. Here the language of an example is a pure function of its
``example_id`` and a seed: a uniform number from a hash, mapped through the cumulative shares. Adding
or removing other examples never moves it, and the expected proportions are exactly the shares.
"""

from __future__ import annotations

import bisect
import hashlib
from itertools import accumulate

import polars as pl

from pipeline.languages import SOURCE_LANGUAGE, Language

MODE_PROPORTIONAL = "proportional"
MODE_ALL = "all"


def language_weights(languages: tuple[Language, ...], english_share: float | None = None) -> list[float]:
    """mC4 shares restricted to ``languages`` and renormalised to sum to 1.

    ``english_share`` (0-1), when English is among ``languages``, fixes English's weight and spreads
    the rest over the others by their mC4 shares: a run with few languages (the demo) keeps English
    at the full mix's share (mBLIP: 43.84%) instead of renormalising it up.
    """
    total = sum(lang.mc4_share_pct for lang in languages)
    if total <= 0:
        raise ValueError("the configured languages have no mC4 share to assign by")
    codes = [lang.code for lang in languages]
    if english_share is None or SOURCE_LANGUAGE not in codes or len(codes) == 1:
        return [lang.mc4_share_pct / total for lang in languages]
    rest = total - languages[codes.index(SOURCE_LANGUAGE)].mc4_share_pct
    return [english_share if lang.code == SOURCE_LANGUAGE else (1 - english_share) * lang.mc4_share_pct / rest
            for lang in languages]


def unit_hash(example_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from the id and seed (first 8 bytes of blake2b)."""
    digest = hashlib.blake2b(f"{seed}:{example_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_languages(
    frame: pl.DataFrame, languages: tuple[Language, ...], seed: int = 0, mode: str = MODE_PROPORTIONAL,
    english_share: float | None = None,
) -> pl.DataFrame:
    """Add ``lang`` and ``lang_nllb``: one language per row (proportional) or one row per language (all)."""
    if not languages:
        raise ValueError("no target languages configured")
    if mode == MODE_ALL:
        langs = pl.DataFrame(
            {"lang": [l.code for l in languages], "lang_nllb": [l.nllb for l in languages]}
        )
        return frame.join(langs, how="cross")
    if mode != MODE_PROPORTIONAL:
        raise ValueError(f"assignment mode {mode!r} is not {MODE_PROPORTIONAL!r} or {MODE_ALL!r}")
    cumulative = list(accumulate(language_weights(languages, english_share)))
    cumulative[-1] = 1.0  # guard against float round-off at the top end
    picks = [
        min(bisect.bisect_right(cumulative, unit_hash(eid, seed)), len(languages) - 1)
        for eid in frame["example_id"].to_list()
    ]
    return frame.with_columns(
        pl.Series("lang", [languages[i].code for i in picks], dtype=pl.String),
        pl.Series("lang_nllb", [languages[i].nllb for i in picks], dtype=pl.String),
    )

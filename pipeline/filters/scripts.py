"""Writing systems: which Unicode scripts a target language is written in, and how much of a text is.

The script comes from the NLLB code's suffix (``rus_Cyrl`` -> Cyrillic). ``Jpan`` is Han plus the two
kana scripts and ``Hang`` (Korean) admits Hanja, following ISO 15924's composite codes. Characters of
the ``Common`` and ``Inherited`` scripts (digits, punctuation, combining accents) are neutral: they
count for no script, so "3 Männer!" is 100% Latin.
"""

from __future__ import annotations

from functools import lru_cache

# ISO 15924 code (NLLB suffix) -> Unicode script names (regex \p{Script=...}).
SCRIPT_UNICODE_NAMES: dict[str, tuple[str, ...]] = {
    "Latn": ("Latin",),
    "Cyrl": ("Cyrillic",),
    "Arab": ("Arabic",),
    "Deva": ("Devanagari",),
    "Hans": ("Han",),
    "Hant": ("Han",),
    "Jpan": ("Han", "Hiragana", "Katakana"),
    "Hang": ("Hangul", "Han"),
    "Kore": ("Hangul", "Han"),
    "Grek": ("Greek",),
    "Hebr": ("Hebrew",),
    "Thai": ("Thai",),
    "Telu": ("Telugu",),
    "Taml": ("Tamil",),
    "Sinh": ("Sinhala",),
    "Mymr": ("Myanmar",),
    "Mlym": ("Malayalam",),
    "Laoo": ("Lao",),
    "Knda": ("Kannada",),
    "Khmr": ("Khmer",),
    "Guru": ("Gurmukhi",),
    "Gujr": ("Gujarati",),
    "Geor": ("Georgian",),
    "Ethi": ("Ethiopic",),
    "Beng": ("Bengali",),
    "Armn": ("Armenian",),
    "Tibt": ("Tibetan",),
    "Orya": ("Oriya",),
    "Tfng": ("Tifinagh",),
}

# Scripts written without spaces between words: repetition and overlap work on characters there.
UNSPACED_SCRIPTS = frozenset({"Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})

# Expected characters of target text per character of English, by script: a Chinese caption is
# well under half as long as its English source, an Indic one about as long. Rough values: only the
# Latin ones are measured here (multi30k de/fr/cs), so the length bounds around them stay wide.
EXPECTED_CHAR_RATIO: dict[str, float] = {
    "Latn": 1.1, "Cyrl": 1.1, "Grek": 1.15, "Arab": 0.9, "Hebr": 0.8, "Armn": 1.15, "Geor": 1.2,
    "Deva": 1.0, "Beng": 1.0, "Guru": 1.0, "Gujr": 1.0, "Taml": 1.25, "Telu": 1.05, "Knda": 1.15,
    "Mlym": 1.25, "Sinh": 1.0, "Thai": 0.95, "Laoo": 0.95, "Khmr": 1.1, "Mymr": 1.25, "Ethi": 0.65,
    "Hans": 0.35, "Hant": 0.35, "Jpan": 0.45, "Hang": 0.45, "Kore": 0.45, "Tibt": 1.1, "Orya": 1.0,
    "Tfng": 1.0,
}


# Measured per-language ratios (median target/English characters over multi30k train captions) where
# a language departs from its script's value: Czech captions are much shorter than German ones.
LANGUAGE_CHAR_RATIO: dict[str, float] = {"deu_Latn": 1.15, "fra_Latn": 1.15, "ces_Latn": 0.86}


def expected_char_ratio(nllb_code: str) -> float:
    """Expected target characters per English character for an NLLB code (language, else script)."""
    if nllb_code in LANGUAGE_CHAR_RATIO:
        return LANGUAGE_CHAR_RATIO[nllb_code]
    return EXPECTED_CHAR_RATIO.get(nllb_code.partition("_")[2], 1.0)


@lru_cache(maxsize=None)
def _script_pattern(script: str):
    import regex

    names = "".join(f"\\p{{Script={n}}}" for n in SCRIPT_UNICODE_NAMES[script])
    return regex.compile(f"[{names}]")


@lru_cache(maxsize=1)
def _letter_pattern():
    import regex

    # Letters and marks of a real script: Common/Inherited (digits, punctuation, combining accents
    # shared by many scripts) are neutral.
    return regex.compile(r"[[\p{L}\p{M}]--[\p{Script=Common}\p{Script=Inherited}]]", flags=regex.V1)


@lru_cache(maxsize=1)
def _latin_word_pattern():
    import regex

    return regex.compile(r"[\p{Script=Latin}\p{M}]+")


def script_share(text: str, script: str, allowed_words: frozenset[str] = frozenset()) -> float | None:
    """Share (0-1) of ``text``'s letters that belong to ``script``; None when it has no letters.

    For non-Latin targets, Latin words listed in ``allowed_words`` (lower-cased; the proper names of
    the English source) are left out of the count, so "Москва и Barcelona" stays fully Cyrillic when
    "Barcelona" is in the source.
    """
    letters = _letter_pattern().findall(text)
    total = len(letters)
    if script != "Latn" and allowed_words:
        for word in _latin_word_pattern().findall(text):
            if word.lower() in allowed_words:
                total -= len(word)
    if total <= 0:
        return None
    inside = len(_script_pattern(script).findall(text))
    return min(1.0, inside / total)

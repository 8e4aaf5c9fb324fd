"""Numbers in a text, written as digits (any Unicode decimal digits) or as cardinal number words.

Human translators of captions mostly write small numbers as words ("Two men" -> "Zwei Männer"), so a
digits-only check would reject good translations. Number words are recognised for English and for
the languages listed in ``NUMBER_WORDS`` (with the inflected forms captions use, e.g. Czech
"dva/dvě/dvou/dvěma"); for other targets only digits are compared. "one" is deliberately absent: in
most languages it is also the indefinite article ("a man" -> "ein Mann"), which would make it noise.
A target word that starts with a number word counts as that number, for compounds ("vierstöckig",
"Zweirad", "dvoukolka"), and "both" words count as two ("her two children" -> "ihre beiden Kinder").
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_WORDS: dict[str, dict[int, tuple[str, ...]]] = {
    "en": {
        2: ("two",), 3: ("three",), 4: ("four",), 5: ("five",), 6: ("six",), 7: ("seven",),
        8: ("eight",), 9: ("nine",), 10: ("ten",), 11: ("eleven",), 12: ("twelve",), 20: ("twenty",),
    },
    "de": {
        2: ("zwei", "beide", "beiden", "beider"), 3: ("drei", "dritt"), 4: ("vier",), 5: ("fünf",), 6: ("sechs",),
        7: ("sieben",),
        8: ("acht",), 9: ("neun",), 10: ("zehn",), 11: ("elf",), 12: ("zwölf",), 20: ("zwanzig",),
    },
    "fr": {
        2: ("deux",), 3: ("trois",), 4: ("quatre",), 5: ("cinq",), 6: ("six",), 7: ("sept",),
        8: ("huit",), 9: ("neuf",), 10: ("dix",), 11: ("onze",), 12: ("douze",), 20: ("vingt",),
    },
    "cs": {
        2: ("dva", "dvě", "dvou", "dvěma", "dvojice", "oba", "obě", "oběma", "obou"),
        3: ("tři", "tří", "třem", "třemi", "třech"),
        4: ("čtyři", "čtyř", "čtyřem", "čtyřmi", "čtyřech"), 5: ("pět", "pěti"), 6: ("šest", "šesti"),
        7: ("sedm", "sedmi"), 8: ("osm", "osmi"), 9: ("devět", "devíti"), 10: ("deset", "deseti"),
        11: ("jedenáct", "jedenácti"), 12: ("dvanáct", "dvanácti"), 20: ("dvacet", "dvaceti"),
    },
    "es": {
        2: ("dos", "ambos", "ambas"), 3: ("tres",), 4: ("cuatro",), 5: ("cinco",), 6: ("seis",), 7: ("siete",),
        8: ("ocho",), 9: ("nueve",), 10: ("diez",), 11: ("once",), 12: ("doce",), 20: ("veinte",),
    },
    "it": {
        2: ("due", "entrambi", "entrambe"), 3: ("tre",), 4: ("quattro",), 5: ("cinque",), 6: ("sei",), 7: ("sette",),
        8: ("otto",), 9: ("nove",), 10: ("dieci",), 11: ("undici",), 12: ("dodici",), 20: ("venti",),
    },
    "pt": {
        2: ("dois", "duas", "ambos", "ambas"), 3: ("três",), 4: ("quatro",), 5: ("cinco",), 6: ("seis",), 7: ("sete",),
        8: ("oito",), 9: ("nove",), 10: ("dez",), 11: ("onze",), 12: ("doze",), 20: ("vinte",),
    },
    "nl": {
        2: ("twee", "beide", "beiden"), 3: ("drie",), 4: ("vier",), 5: ("vijf",), 6: ("zes",), 7: ("zeven",),
        8: ("acht",), 9: ("negen",), 10: ("tien",), 11: ("elf",), 12: ("twaalf",), 20: ("twintig",),
    },
}

NUMBER_WORD_LANGUAGES = frozenset(_WORDS)


def number_words(lang: str) -> dict[str, str]:
    """Lower-cased number word -> canonical digits, for a project language code ({} when unknown)."""
    return dict(_lexicon(lang))


@lru_cache(maxsize=None)
def _lexicon(lang: str) -> dict[str, str]:
    return {word: str(value) for value, words in _WORDS.get(lang, {}).items() for word in words}


@lru_cache(maxsize=1)
def _token_pattern():
    import regex

    # A number (digits with inner separators: 1,000 / 3.5 / 2:30) or a word.
    return regex.compile(r"\d+(?:[.,:]\d+)*|\w+")


def _digits(token: str) -> str:
    """Any decimal digits (Arabic-Indic, Devanagari, ...) as ASCII, separators dropped."""
    return "".join(str(unicodedata.digit(ch)) for ch in token if unicodedata.digit(ch, None) is not None)


@lru_cache(maxsize=None)
def _prefixes(lang: str) -> tuple[tuple[str, str], ...]:
    # Longest first, so "dvanáct" wins over "dva"; words under 3 letters are too ambiguous as prefixes.
    return tuple(sorted(((w, v) for w, v in _lexicon(lang).items() if len(w) >= 3), key=lambda wv: -len(wv[0])))


def _word_value(token: str, lang: str) -> str | None:
    lower = token.lower()
    value = _lexicon(lang).get(lower)
    if value is not None:
        return value
    for word, value in _prefixes(lang):
        if lower.startswith(word):
            return value
    return None


def extract_numbers(text: str, lang: str) -> list[str]:
    """Numbers in ``text`` as canonical digit strings; words count for languages with a lexicon."""
    has_words = lang in NUMBER_WORD_LANGUAGES
    found = []
    for token in _token_pattern().findall(text):
        if token[0].isdigit():
            found.append(_digits(token).lstrip("0") or "0")
        elif has_words:
            value = _word_value(token, lang)
            if value is not None:
                found.append(value)
    return found


def numbers_consistent(src: str, tgt: str, tgt_lang: str) -> bool | None:
    """Whether every number of the English ``src`` survives in ``tgt`` (as often as it occurs there);
    None when there is nothing to check.

    Source number words are only checked when the target has a lexicon (else a correct "zwei" for
    "two" could not be recognised); source digits are always checked, and a target number word for
    them counts.
    """
    from collections import Counter

    src_numbers: Counter = Counter()
    has_target_words = tgt_lang in NUMBER_WORD_LANGUAGES
    for token in _token_pattern().findall(src):
        if token[0].isdigit():
            src_numbers[_digits(token).lstrip("0") or "0"] += 1
        elif has_target_words:
            value = _lexicon("en").get(token.lower())
            if value is not None:
                src_numbers[value] += 1
    if not src_numbers:
        return None
    tgt_numbers = Counter(extract_numbers(tgt, tgt_lang))
    return all(tgt_numbers[value] >= count for value, count in src_numbers.items())

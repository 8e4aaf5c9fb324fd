"""Quality signals of a translation, as pure functions over lists of strings (one value per pair).

Every function takes the English sources, the translations and the target's script or language and
returns one column of values; ``None`` means "not applicable" (e.g. no numbers to check), never
"failed". The decision of what is bad lives in ``rules.py``.

Heuristics and where they come from:
- chrF++ (Popović 2017, "chrF++: words helping character n-grams"), reimplemented here exactly as
  sacrebleu computes sentence chrF++ but without its per-call overhead, for back-translations.
- Repetition: repeated n-gram share and the longest run of a repeated unit, plus the zlib
  compression ratio that Whisper uses to detect decoding loops (Radford et al. 2022, Sec. 4.5).
- Length ratio with per-script expectations and a hard bound for very short inputs.
- Copy of the source, script share and number consistency target NLLB's known failure modes on
  short texts (NLLB Team 2022, Sec. 7.3).
"""

from __future__ import annotations

import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path

from pipeline.filters.scripts import EXPECTED_CHAR_RATIO, UNSPACED_SCRIPTS, expected_char_ratio

# --- chrF++ -------------------------------------------------------------------------------------

CHRF_CHAR_ORDER = 6
CHRF_WORD_ORDER = 2
CHRF_BETA = 2
_CHRF_PUNCTS = frozenset('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')


def _chrf_words(sent: str) -> list[str]:
    # sacrebleu's punctuation split: one leading or trailing punctuation mark becomes its own token.
    out = []
    for w in sent.split():
        if len(w) == 1:
            out.append(w)
        elif w[-1] in _CHRF_PUNCTS:
            out += [w[:-1], w[-1]]
        elif w[0] in _CHRF_PUNCTS:
            out += [w[0], w[1:]]
        else:
            out.append(w)
    return out


def _chrf_stats(sent: str) -> tuple[Counter, Counter, list[int]]:
    """Character 1-6-grams in one Counter (the key's length is its order), word uni- and bigrams in
    another (bigrams contain the space), and the number of n-grams of each of the 8 orders."""
    chars = "".join(sent.split())
    n_chars = len(chars)
    char_grams = Counter([chars[i : i + n] for n in range(1, CHRF_CHAR_ORDER + 1) for i in range(n_chars - n + 1)])
    words = _chrf_words(sent)
    word_grams = Counter(words)
    word_grams.update([f"{words[i]} {words[i + 1]}" for i in range(len(words) - 1)])
    totals = [max(0, n_chars - n + 1) for n in range(1, CHRF_CHAR_ORDER + 1)]
    totals += [len(words), max(0, len(words) - 1)]
    return char_grams, word_grams, totals


def _chrf_one(hyp: str, ref: str) -> float:
    h_chars, h_words, h_totals = _chrf_stats(hyp)
    r_chars, r_words, r_totals = _chrf_stats(ref)
    matches = [0] * (CHRF_CHAR_ORDER + CHRF_WORD_ORDER)
    for gram, count in h_chars.items():
        other = r_chars.get(gram)
        if other:
            matches[len(gram) - 1] += min(count, other)
    for gram, count in h_words.items():
        other = r_words.get(gram)
        if other:
            matches[CHRF_CHAR_ORDER + (" " in gram)] += min(count, other)
    factor = CHRF_BETA**2
    avg_prec = avg_rec = 0.0
    effective = 0
    for n_match, n_hyp, n_ref in zip(matches, h_totals, r_totals):
        if n_hyp == 0 or n_ref == 0:
            continue
        avg_prec += n_match / n_hyp
        avg_rec += n_match / n_ref
        effective += 1
    if effective == 0:
        return 0.0
    avg_prec /= effective
    avg_rec /= effective
    if avg_prec + avg_rec == 0:
        return 0.0
    return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec)


def chrf_pp_batch(hypotheses: list[str], references: list[str]) -> list[float]:
    """Sentence chrF++ (0-100, sacrebleu's numbers) of each hypothesis against its reference.

    Identical pairs are scored once.
    """
    pairs = list(zip(hypotheses, references))
    distinct = list(dict.fromkeys(pairs))
    lookup = {pair: _chrf_one(*pair) for pair in distinct}
    return [lookup[p] for p in pairs]


# --- tokens -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _word_pattern():
    import regex

    return regex.compile(r"\w+")


def units(text: str, script: str) -> list[str]:
    """Words, or characters (without spaces and punctuation) for scripts written without spaces."""
    if script in UNSPACED_SCRIPTS:
        return [ch for ch in text if ch.isalnum()]
    return _word_pattern().findall(text.lower())


def source_names(src: str) -> frozenset[str]:
    """Lower-cased capitalised words of an English source that are not its first word: proper names."""
    words = _word_pattern().findall(src)
    return frozenset(w.lower() for w in words[1:] if w[:1].isupper())


# --- copy of the source --------------------------------------------------------------------------


def copy_overlap(srcs: list[str], tgts: list[str]) -> list[float | None]:
    """Share (0-1) of the source's words that reappear in the translation, names and numbers aside.

    A human German caption shares a few words with its English source ("in", names); a copy or a
    copy with one word changed shares nearly all. None when the source has no ordinary words.
    """
    pattern = _word_pattern()
    out: list[float | None] = []
    for src, tgt in zip(srcs, tgts):
        names = source_names(src)
        words = [w for w in pattern.findall(src.lower()) if not w.isdigit() and w not in names]
        if not words:
            out.append(None)
            continue
        tgt_words = set(pattern.findall(tgt.lower()))
        out.append(sum(w in tgt_words for w in words) / len(words))
    return out


# --- repetition ---------------------------------------------------------------------------------

REPEAT_WORD_NGRAM = 3
REPEAT_CHAR_NGRAM = 4


def repeated_ngram_share(texts: list[str], scripts: list[str]) -> list[float]:
    """Share (0-1) of the n-grams of each text that repeat an earlier one (word 3-grams; character
    4-grams for unspaced scripts). 0 for texts shorter than one n-gram."""
    out = []
    for text, script in zip(texts, scripts):
        toks = units(text, script)
        n = REPEAT_CHAR_NGRAM if script in UNSPACED_SCRIPTS else REPEAT_WORD_NGRAM
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        out.append(1 - len(set(grams)) / len(grams) if grams else 0.0)
    return out


def longest_repeat_run(texts: list[str], scripts: list[str], max_unit: int = 4) -> list[int]:
    """Longest run of one unit (1..``max_unit`` words, twice that in characters for unspaced scripts)
    repeated back to back: "cada vez cada vez cada vez" -> 3. 1 means no repetition."""
    out = []
    for text, script in zip(texts, scripts):
        toks = units(text, script)
        longest_unit = max_unit * 2 if script in UNSPACED_SCRIPTS else max_unit
        best = 1
        for size in range(1, longest_unit + 1):
            if len(toks) < 2 * size:
                break
            for start in range(size):
                run, prev = 1, None
                for i in range(start, len(toks) - size + 1, size):
                    cur = toks[i : i + size]
                    run = run + 1 if cur == prev else 1
                    best = max(best, run)
                    prev = cur
        out.append(best)
    return out


def compression_ratio(texts: list[str]) -> list[float]:
    """UTF-8 bytes over zlib-compressed bytes; loops compress far better than language."""
    out = []
    for text in texts:
        raw = text.encode("utf-8")
        out.append(len(raw) / len(zlib.compress(raw, 9)) if raw else 0.0)
    return out


# --- length -------------------------------------------------------------------------------------


def length_ratio(srcs: list[str], tgts: list[str], langs: list[str]) -> list[float | None]:
    """Target characters per source character over the language's expected ratio (1 = typical);
    ``langs`` are NLLB codes (see ``scripts.expected_char_ratio``)."""
    out: list[float | None] = []
    for src, tgt, lang in zip(srcs, tgts, langs):
        n_src = len(src.strip())
        if n_src == 0:
            out.append(None)
            continue
        out.append(len(tgt.strip()) / n_src / expected_char_ratio(lang))
    return out


def short_input_inflated(
    srcs: list[str], tgts: list[str], scripts: list[str], max_src_words: int = 3, factor: float = 3.0, slack: int = 8
) -> list[bool | None]:
    """For inputs of at most ``max_src_words`` words (answers, labels, numbers): whether the output
    exceeds ``factor`` x the expected length + ``slack`` characters, or 2 x words + 2 words.
    "yes" -> "Ja" is fine, "yes" -> "Ja, das ist richtig so." is a sentence made up. None for
    longer inputs."""
    pattern = _word_pattern()
    out: list[bool | None] = []
    for src, tgt, script in zip(srcs, tgts, scripts):
        n_words = len(pattern.findall(src))
        if n_words == 0 or n_words > max_src_words:
            out.append(None)
            continue
        limit_chars = factor * EXPECTED_CHAR_RATIO.get(script, 1.0) * len(src.strip()) + slack
        too_long = len(tgt.strip()) > limit_chars
        if script not in UNSPACED_SCRIPTS:
            too_long = too_long or len(pattern.findall(tgt)) > 2 * n_words + 2
        out.append(too_long)
    return out


# --- character stutters -------------------------------------------------------------------------

# Units of 2-5 characters (letters and the single spaces between words): "zezezezeigt" is "ze" x 4,
# "Whatatatatatatat" is "at" x 7, "at at at" is "at " x 3. Single letters are not units: German writes
# "Schifffahrt" (three f), and a run of one letter long enough to matter ("aaaaaa") is "aa" x 3.
STUTTER_MIN_UNIT = 2
STUTTER_MAX_UNIT = 5


@lru_cache(maxsize=1)
def _stutter_patterns():
    import regex

    # Spans of letters (with marks) joined by single spaces; punctuation and digits end a span, so
    # "2000" or "..." are never stutters.
    span = regex.compile(r"[\p{L}\p{M}]+(?: [\p{L}\p{M}]+)*")
    # Any unit of 2-5 characters doubled: texts without one (most) need no closer look.
    doubled = regex.compile(r"(.{%d,%d})\1" % (STUTTER_MIN_UNIT, STUTTER_MAX_UNIT))
    return span, doubled


def _longest_periodic_run(span: str) -> int:
    """Most back-to-back copies of one 2-5 character unit in ``span``. For each period n: where ``run``
    characters in a row each equal the one n places before, the stretch (run + n characters) holds
    (run + n) // n copies of its first n characters."""
    best = 1
    for n in range(STUTTER_MIN_UNIT, STUTTER_MAX_UNIT + 1):
        run = 0
        for i in range(n, len(span)):
            run = run + 1 if span[i] == span[i - n] else 0
            if run:
                best = max(best, (run + n) // n)
    return best


def char_stutter(texts: list[str]) -> list[int]:
    """Most back-to-back copies of a character unit of 2-5 letters (spaces between words included),
    inside and across words: "zezezezeigt" -> 4, "Whatatatatatatat" -> 7, "Mississippi" -> 2 ("iss"
    twice), ordinary text -> 1 or 2. The word-level repetition signals miss loops inside a word: a small
    model that stutters a syllable writes one long non-word."""
    span_pattern, doubled = _stutter_patterns()
    out = []
    for text in texts:
        lowered = " ".join((text or "").lower().split())
        best = 1
        for span in span_pattern.findall(lowered):
            if len(span) >= 2 * STUTTER_MIN_UNIT and doubled.search(span):
                best = max(best, _longest_periodic_run(span))
        out.append(best)
    return out


# --- English left in the translation -------------------------------------------------------------

# English function words: shared by chance with many languages ("a" is Czech and French, "in" German and
# Italian, "to" Czech and Polish, "die" German). For a language without a borrowed list (no human
# references to tell which of them it uses) they do not count in ``english_leak``.
ENGLISH_FUNCTION_WORDS = frozenset("""
a an the this that these those there here it its they them their he him his she her we us our you your i me my
and or but nor so yet if than then as of in on at to into onto from with without by for about over under above
below near next behind beside between through across along around up down out off away while during after before
is are was were be been being am has have had having do does did will would can could should may might must
not no yes very too also just only all some any each every both other another one more most much many such
what which who whom whose where when why how
""".split())
# Sources with fewer content words get no leak share: a short label ("pizza", "tennis racket") may be the
# same words in the target language, and one shared word would be a share of 0.5 or 1.
LEAK_MIN_WORDS = 3
# Words the target language borrows from English (or shares with it), from its human references:
# written by `python -m dev.filters.borrowed`; see ``english_leak``.
BORROWED_WORDS_FILE = Path(__file__).with_name("borrowed_words.yaml")


@lru_cache(maxsize=1)
def _letters_pattern():
    import regex

    return regex.compile(r"\p{L}+")


@lru_cache(maxsize=1)
def borrowed_words() -> dict[str, frozenset[str]]:
    """Per NLLB code, the English words its human references use too (``BORROWED_WORDS_FILE``)."""
    import yaml

    data = yaml.safe_load(BORROWED_WORDS_FILE.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{BORROWED_WORDS_FILE}: expected a mapping of NLLB code to a list of words")
    return {code: frozenset(str(w).lower() for w in words) for code, words in data.items()}


def english_words(src: str, names: frozenset[str] | None = None) -> list[str]:
    """Lower-cased words of an English source (letters only: numbers are never words here) that are not
    names (capitalised words after the first, see ``source_names``)."""
    names = source_names(src) if names is None else names
    return [w for w in _letters_pattern().findall(src.lower()) if w not in names]


def word_set(text: str) -> set[str]:
    """The distinct lower-cased words (letters only) of ``text``."""
    return set(_letters_pattern().findall(text.lower()))


def english_leak(srcs: list[str], tgts: list[str], langs: list[str], min_words: int = LEAK_MIN_WORDS,
                 borrowed: dict[str, frozenset[str]] | None = None,
                 names: list[frozenset[str]] | None = None) -> list[float | None]:
    """Share (0-1) of the English source's words found verbatim in the translation, leaving out names,
    numbers and the words the target language shares with English.

    For a language with a borrowed list (``borrowed``, per NLLB code; default ``borrowed_words()``, built
    from its human Multi30k train translations: German "in", "jeans", French "restaurant", Czech "a"),
    every other word counts, function words included: a translation left half in English keeps "the",
    "is", "with" as much as its nouns. For a language without one, English function words
    (``ENGLISH_FUNCTION_WORDS``) do not count: "a", "in", "to", "die" are words of many languages, and
    without that language's references nothing says which. A human German caption scores 0-0.1, one half
    left in English about 0.5. None when fewer than ``min_words`` words count (a short label may be the
    same words in the target language) and for English targets.

    ``copy_overlap`` counts every word, borrowings included, and so needs a lenient threshold: it is for
    whole copies; this is for partial ones. ``names``: each source's ``source_names`` when already known.
    """
    borrowed = borrowed_words() if borrowed is None else borrowed
    names = names if names is not None else [None] * len(srcs)
    out: list[float | None] = []
    for src, tgt, lang, src_names in zip(srcs, tgts, langs, names):
        skip = borrowed.get(lang, ENGLISH_FUNCTION_WORDS)
        words = [w for w in english_words(src, src_names) if w not in skip]
        if len(words) < min_words or lang == "eng_Latn":
            out.append(None)
            continue
        tgt_words = word_set(tgt)
        out.append(sum(w in tgt_words for w in words) / len(words))
    return out


# --- sentences ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _sentence_end():
    import regex

    # After a sentence's final mark: whitespace (spaced scripts), or nothing after the full-width marks of
    # Chinese and Japanese, the Devanagari danda, the Arabic question mark.
    return regex.compile(r"(?<=[.!?…])\s+|(?<=[。！？।؟])\s*")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after ., !, ?, … and their CJK, Devanagari and Arabic forms);
    a piece without a letter (an ellipsis, a number) or starting lower-case ("Wow... ein Hund") joins
    the sentence before it."""
    letter = _letters_pattern()
    out: list[str] = []
    for piece in _sentence_end().split((text or "").strip()):
        if not piece:
            continue
        if out and (not letter.search(piece) or piece[0].islower()):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    # A leading piece without letters ("1.") belongs to the next sentence.
    if len(out) > 1 and not letter.search(out[0]):
        out[1] = f"{out[0]} {out[1]}"
        out = out[1:]
    return out

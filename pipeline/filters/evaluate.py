"""How well the filter separates human translations from NLLB's failure modes, measured on multi30k.

The labelled set: every human (English, translation) pair of a multi30k split is a positive; each
pair is also corrupted in each known failure mode of NLLB on short texts (NLLB Team 2022, Sec. 7.3)
to make negatives:

- ``repetition``: a decoding loop (a short unit repeated back to back, or the sentence repeated);
- ``copy_source``: the English source, verbatim or with one word taken from the translation;
- ``wrong_language``: the same sentence's human translation in another of the languages;
- ``wrong_script``: the translation transliterated into Cyrillic or Greek;
- ``truncated``: only the first 20-50% of the words (sentences of at least 4 words);
- ``numbers``: a number of the translation changed or dropped (pairs with a number on both sides);
- ``unrelated``: another sentence of the same language (only back-translation can catch it);
- ``stutter``: a syllable of 2-3 letters stuttered inside one word, 3-7 copies ("zezezezeigt");
- ``english_leak``: half of the words left in English (the translation's first half and the source's
  second half, or the other way round);
- ``run_on``: the right translation followed by another row's sentence (a decoder that does not stop).

The last three are modelled on what small and large MT models emit on captions and questions (issue 30).

Recall is the share of negatives rejected; "human kept" is the share of positives kept. Thresholds
are tuned on a sample of the train split (``--split train``) and reported on val, so the val numbers
are not fitted to val. Corruptions are seeded per pair: the same data gives the same set.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.filters.numbers import number_words
from pipeline.filters.quality import apply_quality_filter
from pipeline.languages import get_language
from pipeline.nllb.shipped import ShippedModelMissingError, shipped_val_dir

MODES = ("repetition", "copy_source", "wrong_language", "wrong_script", "truncated", "numbers", "unrelated",
         "stutter", "english_leak", "run_on")
HUMAN = "human"
MULTI30K_LANGS = ("de", "fr", "cs")

_CYRILLIC = dict(zip("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопкрстуввкуз"))
_GREEK = dict(zip("abcdefghijklmnopqrstuvwxyz", "αβψδεφγηιξκλμνοπκρστθωωχυζ"))


def default_data_dir(split: str) -> Path:
    """The shipped copy of the val split; any other split must be given (``--data DIR``)."""
    if split == "val":
        try:
            return shipped_val_dir()
        except ShippedModelMissingError:
            pass
    raise FileNotFoundError(f"only the multi30k val split ships with the package; give the directory holding "
                            f"{split}.{{en,de,fr,cs}}.gz with --data")


def read_multi30k(data_dir: str | Path, split: str, langs: tuple[str, ...] = MULTI30K_LANGS) -> dict[str, list[str]]:
    """``{"en": [...], "de": [...], ...}`` from ``{split}.{lang}.gz`` (one sentence per line, aligned)."""
    data_dir = Path(data_dir)
    out = {}
    for lang in ("en", *langs):
        path = data_dir / f"{split}.{lang}.gz"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found; pass --data DIR holding {split}.en.gz and {split}.<lang>.gz")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            out[lang] = [line.rstrip("\n") for line in f]
    n = {len(v) for v in out.values()}
    if len(n) != 1:
        raise ValueError(f"{data_dir}: {split} files are not aligned (line counts {sorted(n)})")
    return out


def _rng(*key) -> random.Random:
    return random.Random(int(hashlib.sha1("\x1f".join(map(str, key)).encode()).hexdigest()[:12], 16))


def _words(text: str) -> list[str]:
    return text.split()


def corrupt_repetition(tgt: str, rng: random.Random) -> str:
    words = _words(tgt)
    style = rng.randrange(3)
    if style == 0 and len(words) >= 2:  # loop on a 1-3 word unit after a prefix
        size = rng.randint(1, min(3, len(words) - 1))
        start = rng.randint(1, len(words) - size)
        unit = words[start : start + size]
        return " ".join(words[: start + size] + unit * rng.randint(3, 8))
    if style == 1:  # the whole sentence again
        return " ".join([tgt] * rng.randint(2, 3))
    return " ".join(words + [words[-1]] * rng.randint(4, 10))  # the last word repeated


def corrupt_copy(en: str, tgt: str, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return en
    words = _words(en)
    t_words = _words(tgt)
    i = rng.randrange(len(words))
    words[i] = t_words[min(i, len(t_words) - 1)] if t_words else words[i]
    return " ".join(words)


def corrupt_script(tgt: str, rng: random.Random) -> str:
    table = _CYRILLIC if rng.random() < 0.5 else _GREEK
    return "".join(
        (table[ch.lower()].upper() if ch.isupper() else table[ch]) if ch.lower() in table else ch for ch in tgt
    )


def corrupt_truncate(tgt: str, rng: random.Random) -> str | None:
    words = _words(tgt)
    if len(words) < 4:
        return None
    keep = max(1, round(len(words) * rng.uniform(0.2, 0.5)))
    fragment = " ".join(words[:keep])
    # Half keep the sentence's final punctuation, as a decoder that stops early still often does.
    if rng.random() < 0.5 and tgt[-1] in ".!?" and fragment[-1] not in ".!?":
        fragment += tgt[-1]
    return fragment


def corrupt_numbers(en: str, tgt: str, lang: str, rng: random.Random) -> str | None:
    """Change (3 in 4) or drop one number of ``tgt``; None when the pair has no number on both sides."""
    en_words = number_words("en")
    if not any(w.strip(".,!?;:").lower() in en_words or any(c.isdigit() for c in w) for w in _words(en)):
        return None
    lexicon = number_words(lang)
    words = _words(tgt)
    spots = []
    for i, w in enumerate(words):
        core = w.strip(".,!?;:\"'()")
        if core.isdigit() or core.lower() in lexicon:
            spots.append((i, core))
    if not spots:
        return None
    i, core = rng.choice(spots)
    if rng.random() < 0.25:
        del words[i]
        return " ".join(words)
    if core.isdigit():
        new = str(int(core) + rng.randint(1, 5))
    else:
        value = lexicon[core.lower()]
        choices = sorted({w for w, v in lexicon.items() if v != value})
        new = rng.choice(choices)
        new = new.capitalize() if core[0].isupper() else new
    words[i] = words[i].replace(core, new)
    return " ".join(words)


def corrupt_stutter(tgt: str, rng: random.Random) -> str | None:
    """One word gets a 2-3 letter unit repeated 3-7 times in a row ("zeigt" -> "zezezezeigt"); None
    when no word has 3 letters in a row."""
    words = _words(tgt)
    spots = []
    for i, w in enumerate(words):
        for size in (2, 3):
            spots += [(i, k, size) for k in range(len(w) - size + 1) if w[k : k + size].isalpha()]
    if not spots:
        return None
    i, k, size = rng.choice(spots)
    w = words[i]
    words[i] = w[:k] + w[k : k + size] * rng.randint(3, 7) + w[k + size :]
    return " ".join(words)


def corrupt_english_leak(en: str, tgt: str, rng: random.Random) -> str | None:
    """Half of the words left in English: the translation's first half then the source's second half,
    or the source's first half then the translation's second half. None for sources under 4 words."""
    src, t = _words(en), _words(tgt)
    if len(src) < 4 or len(t) < 2:
        return None
    if rng.random() < 0.5:
        return " ".join(t[: len(t) // 2] + src[len(src) // 2 :])
    return " ".join(src[: len(src) // 2] + t[len(t) // 2 :])


def corrupt_run_on(tgt: str, other: str) -> str:
    """The right translation, then an unrelated sentence (a decoder that does not stop)."""
    return f"{tgt} {other}"


def _other_line(lines: list[int], i: int, rng: random.Random) -> int:
    j = rng.choice(lines)
    while j == i and len(lines) > 1:
        j = rng.choice(lines)
    return j


def build_labelled_set(
    data: dict[str, list[str]], langs: tuple[str, ...] = MULTI30K_LANGS, limit: int | None = None, seed: int = 0
) -> pl.DataFrame:
    """Positives and negatives (columns: pair, lang, lang_nllb, label, text_en, text_tgt).

    ``limit`` takes a seeded sample of that many lines (the same lines for every language).
    """
    n = len(data["en"])
    lines = list(range(n))
    if limit is not None and limit < n:
        lines = sorted(random.Random(seed).sample(lines, limit))
    rows = []
    for lang in langs:
        nllb = get_language(lang).nllb
        others = [x for x in langs if x != lang]
        for i in lines:
            en, tgt = data["en"][i].strip(), data[lang][i].strip()
            if not en or not tgt:
                continue
            rows.append((i, lang, nllb, HUMAN, en, tgt))
            neg = {
                "repetition": corrupt_repetition(tgt, _rng(seed, lang, i, "repetition")),
                "copy_source": corrupt_copy(en, tgt, _rng(seed, lang, i, "copy")),
                "wrong_language": data[_rng(seed, lang, i, "lang").choice(others)][i].strip() if others else None,
                "wrong_script": corrupt_script(tgt, _rng(seed, lang, i, "script")),
                "truncated": corrupt_truncate(tgt, _rng(seed, lang, i, "truncated")),
                "numbers": corrupt_numbers(en, tgt, lang, _rng(seed, lang, i, "numbers")),
                "unrelated": data[lang][_other_line(lines, i, _rng(seed, lang, i, "unrelated"))].strip(),
                "stutter": corrupt_stutter(tgt, _rng(seed, lang, i, "stutter")),
                "english_leak": corrupt_english_leak(en, tgt, _rng(seed, lang, i, "english_leak")),
            }
            other = data[lang][_other_line(lines, i, _rng(seed, lang, i, "run_on"))].strip()
            neg["run_on"] = corrupt_run_on(tgt, other) if other else None
            for mode in MODES:
                if neg[mode]:
                    rows.append((i, lang, nllb, mode, en, neg[mode]))
    return pl.DataFrame(rows, schema=["pair", "lang", "lang_nllb", "label", "text_en", "text_tgt"], orient="row")


@dataclass(frozen=True)
class ModeResult:
    label: str
    n: int
    rate: float  # negatives: share rejected; human: share kept


def summarise(scored: pl.DataFrame) -> list[ModeResult]:
    """Per label: recall (negatives) or kept share (human), then the overall negative recall."""
    out = []
    for label in (HUMAN, *MODES):
        part = scored.filter(pl.col("label") == label)
        if part.height == 0:
            continue
        rejected = (part["status"] == "rejected").sum()
        rate = (part.height - rejected) / part.height if label == HUMAN else rejected / part.height
        out.append(ModeResult(label, part.height, float(rate)))
    neg = scored.filter(pl.col("label") != HUMAN)
    if neg.height:
        out.append(ModeResult("all negatives", neg.height, float((neg["status"] == "rejected").sum() / neg.height)))
    return out


def evaluate_filter(labelled: pl.DataFrame, rules=None, translator=None, model_languages=None,
                    reverse: str = "decode") -> pl.DataFrame:
    """Run the quality filter over a labelled set; returns it with every signal, status and reason.

    Only rows the heuristics keep are back-translated (``score_rejected=False``): the keep/reject
    outcome is identical and the model runs on about a quarter of the rows.
    """
    return apply_quality_filter(labelled, translator, rules, model_languages=model_languages, score_rejected=False,
                                reverse=reverse)


def format_report(results: dict[str, list[ModeResult]]) -> str:
    """One table: a row per label, a column per run ("heuristics", "with back-translation")."""
    names = list(results)
    labels = [r.label for r in next(iter(results.values()))]
    header = f"{'label':<16} {'n':>6}  " + "  ".join(f"{name:>22}" for name in names)
    lines = [header, "-" * len(header)]
    for k, label in enumerate(labels):
        n = results[names[0]][k].n
        what = "kept" if label == HUMAN else "rejected"
        cells = "  ".join(f"{results[name][k].rate * 100:>12.1f}% {what:>8}" for name in names)
        lines.append(f"{label:<16} {n:>6}  {cells}")
    return "\n".join(lines)


def reason_breakdown(scored: pl.DataFrame, label: str) -> pl.DataFrame:
    """Counts of reject reasons within one label (which rule caught, or wrongly rejected, what)."""
    return (
        scored.filter(pl.col("label") == label)
        .group_by("reject_reason")
        .len()
        .sort("len", descending=True)
    )


def run_evaluation(
    data_dir: str | Path | None = None,
    split: str = "val",
    langs: tuple[str, ...] = MULTI30K_LANGS,
    limit: int | None = None,
    seed: int = 0,
    rules=None,
    translator=None,
    model_languages: frozenset[str] | None = None,
    reverse: str = "decode",
) -> tuple[dict[str, list[ModeResult]], dict[str, pl.DataFrame]]:
    """Heuristics alone and, with a ``translator``, with its model signals (``reverse`` mode): results
    and scored sets."""
    data = read_multi30k(data_dir or default_data_dir(split), split, langs)
    labelled = build_labelled_set(data, langs, limit=limit, seed=seed)
    scored = {"heuristics": evaluate_filter(labelled, rules, None)}
    if translator is not None:
        name = "with back-translation" if reverse == "decode" else f"with reverse {reverse}"
        scored[name] = evaluate_filter(labelled, rules, translator, model_languages, reverse)
    return {name: summarise(frame) for name, frame in scored.items()}, scored

"""Build the per-language list of English words a target language borrows, for the English-leak signal.

``python -m dev.filters.borrowed --data MULTI30K [--split train]`` reads the aligned Multi30k files
(``{split}.{en,de,fr,cs}.gz``) and writes ``pipeline/filters/borrowed_words.yaml``: for each language,
the English words (``signals.english_words``: names and numbers aside) that its human translators kept verbatim
in at least ``--min-pairs`` pairs and in at least ``--min-share`` of the pairs whose English source has
the word. "jeans", "baseball" and "cafe" pass; "blue" (kept by a few careless translations out of
thousands) and "man" (Czech and German words too, but not what "man" translates to) do not. Built on
train only: the filter is measured on val.

Why pairs and not the references alone: a word that merely occurs in a language's references (German
"blue" in "Blue Man Group", a translator's slip) is not what that language writes for the English word;
a word its translators keep when the source has it is. With the lists, the English-leak share of human
val pairs is above ``max_en_leak`` (0.34) in 1 of 1,014 German captions, 0 French, 0 Czech; with no lists
(only English function words left out) in 13, 16 and 1.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from pipeline.filters.evaluate import MULTI30K_LANGS, read_multi30k
from pipeline.filters.signals import BORROWED_WORDS_FILE, english_words, word_set
from pipeline.languages import get_language

MIN_PAIRS = 2
MIN_SHARE = 0.1


def borrowed_from_pairs(sources: list[str], targets: list[str], min_pairs: int = MIN_PAIRS,
                        min_share: float = MIN_SHARE) -> list[str]:
    """English content words kept verbatim in >= ``min_pairs`` pairs and >= ``min_share`` of the pairs
    whose source has them, sorted."""
    in_source: Counter = Counter()
    kept: Counter = Counter()
    for src, tgt in zip(sources, targets):
        words = set(english_words(src))
        in_source.update(words)
        tgt_words = word_set(tgt)
        kept.update(w for w in words if w in tgt_words)
    return sorted(w for w, n in kept.items() if n >= min_pairs and n / in_source[w] >= min_share)


def main(argv: list[str] | None = None) -> int:
    import yaml

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="directory with {split}.{en,de,fr,cs}.gz")
    p.add_argument("--split", default="train")
    p.add_argument("--langs", default=",".join(MULTI30K_LANGS))
    p.add_argument("--min-pairs", type=int, default=MIN_PAIRS)
    p.add_argument("--min-share", type=float, default=MIN_SHARE)
    p.add_argument("--out", type=Path, default=BORROWED_WORDS_FILE)
    args = p.parse_args(argv)
    langs = tuple(args.langs.split(","))
    data = read_multi30k(args.data, args.split, langs)
    lists = {get_language(lang).nllb: borrowed_from_pairs(data["en"], data[lang], args.min_pairs, args.min_share)
             for lang in langs}
    header = ("# English words each language keeps verbatim in its human Multi30k translations (the English-leak\n"
              "# signal does not count them), written by\n"
              f"# `python -m dev.filters.borrowed --split {args.split} --min-pairs {args.min_pairs} "
              f"--min-share {args.min_share}`.\n")
    args.out.write_text(header + yaml.safe_dump(lists, width=118, default_flow_style=None, allow_unicode=True))
    for code, words in lists.items():
        print(f"{code}: {len(words)} words")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

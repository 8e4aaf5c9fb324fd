"""The other sources a translation is scored against for the source margin (``score_fwd_margin``).

The margin compares how well a row's own English source explains its translation with how well other
English sources do (``pipeline.filters.quality._source_margin``). Those other sources come from a fixed
pool shipped in the package, picked by a hash of the row's own source, so a row's margin depends on that
row only: never on its chunk (``run.chunk_rows``), its batch companions or the order of the rows. They
used to be the other sources of the batch, which moved margins when only the chunk size changed.

The pool is the English side of the held-out sets shipped with the translator: 1,014 Multi30k val
captions (``pipeline/assets/multi30k-val``) and 320 xGQA val questions (``pipeline/assets/xgqa-val``).
A question is contrasted with questions and anything else with captions: a contrast of another kind
(a caption for a question) explains almost nothing and would pass every row. Texts far from both kinds
(long LLaVA answers, class names) still get a margin, a lenient one.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache

from pipeline.nllb.shipped import shipped_questions_val_dir, shipped_val_dir

# Other sources each translation is scored against (each costs one more forced-decoding pass; on
# multi30k train, 4 caught a third more unrelated outputs than 2).
CONTRAST_SOURCES = 4


def resolve_contrasts(contrasts: int | None, rules) -> int:
    """``contrasts`` as a run uses it: None (auto) is ``CONTRAST_SOURCES`` when ``rules`` (a ``FilterRules``)
    has a margin rule on and 0 (no margin computed) when it has none."""
    if contrasts is not None:
        return contrasts
    return CONTRAST_SOURCES if rules.margin_on() else 0


def _read_pool(path) -> tuple[str, ...]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return tuple(dict.fromkeys(line for line in lines if line))  # distinct, in file order


@lru_cache(maxsize=2)
def contrast_pool(questions: bool) -> tuple[str, ...]:
    """The fixed pool of English questions (``questions``) or captions."""
    return _read_pool((shipped_questions_val_dir() if questions else shipped_val_dir()) / "val.en.gz")


def is_question(text: str) -> bool:
    return text.rstrip().endswith("?")


def contrast_sources(source: str, k: int = CONTRAST_SOURCES) -> list[str]:
    """``k`` distinct pool entries other than ``source``, a function of ``source`` alone.

    A hash of the source picks a start in the pool of its kind; the contrasts sit ``j * n / (k + 1)``
    entries after it (j = 1..k), spread over the pool; an entry equal to the source is replaced by the next.
    """
    if k < 1:
        raise ValueError(f"a source margin needs at least one contrast source, got {k}")
    pool = contrast_pool(is_question(source))
    n = len(pool)
    start = int.from_bytes(hashlib.blake2b(source.encode(), digest_size=8).digest(), "big") % n
    own = source.strip().casefold()
    picked: list[str] = []
    for j in range(1, k + 1):
        position = start + j * n // (k + 1)
        while pool[position % n].casefold() == own or pool[position % n] in picked:
            position += 1
        picked.append(pool[position % n])
    return picked

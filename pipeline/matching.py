"""Image-caption matching with hard negatives, as mBLIP built its 600k matching examples (arXiv 2307.06930).

Every pool caption is embedded into a FAISS index; each image's embedding queries it for its nearest
captions. Half of the examples (exactly, seeded) are positives with the image's own caption, half are
negatives whose caption is drawn uniformly from six candidates, as the reference: a random pool caption or
the image's neighbours at 0-based ranks 2, 9, 29, 99, 299.

Deviations, on purpose: vectors are L2-normalised and ranked by inner product (cosine); the reference
ranked raw vectors by L2. The draw is seeded per example (stable under reordering). A negative is never
the image's own caption nor one equal to it after normalisation (case, punctuation, spacing); such a
candidate is replaced by the next one of the example's seeded order, and the card counts how often.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NEIGHBOUR_RANKS = (2, 9, 29, 99, 299)  # 0-based, as the reference (k = 300)
KIND_RANDOM = "random"
KIND_POSITIVE = "positive"
KINDS = (KIND_RANDOM, *(f"rank_{r}" for r in NEIGHBOUR_RANKS))
_PUNCT = re.compile(r"[^\w\s]")
_MASK = (1 << 64) - 1


def normalise_caption(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


def build_index(vectors, exact_limit: int = 1_000_000, hnsw_m: int = 32, ef_construction: int = 200,
                ef_search: int = 512):
    """An exact inner-product index up to ``exact_limit`` vectors, HNSW (inner product) above it.

    Returns ``(index, info)``; ``info`` records the kind and its parameters for the card. ``vectors`` is
    an (n, d) float32 array of L2-normalised rows.
    """
    import faiss
    import numpy as np

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if n <= exact_limit:
        index = faiss.IndexFlatIP(d)
        info = {"kind": "IndexFlatIP (exact)", "vectors": n, "dim": d, "exact_limit": exact_limit}
    else:
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        info = {"kind": "IndexHNSWFlat (approximate, inner product)", "vectors": n, "dim": d,
                "exact_limit": exact_limit, "M": hnsw_m, "efConstruction": ef_construction, "efSearch": ef_search}
    index.add(vectors)
    return index, info


def search_neighbours(index, queries, k: int, batch: int = 4096):
    """(n, k) int64 neighbour ids of each query, best first (-1 where the index has fewer than k)."""
    import numpy as np

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], batch):
        _, ids = index.search(queries[start:start + batch], k)
        out[start:start + batch] = ids
    return out


def _mix(*values: int) -> int:
    """splitmix64 over the values: a stable 64-bit hash (same on every machine and Python version)."""
    z = 0
    for v in values:
        z = (z ^ (v & _MASK)) + 0x9E3779B97F4A7C15 & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
    return z


@dataclass(frozen=True)
class MatchExample:
    position: int  # index into the pool
    caption: int  # pool index of the caption shown
    positive: bool
    kind: str  # "positive", "random" or "rank_<r>"
    replaced: int  # candidates skipped (the own caption, a normalised copy, a rank beyond the pool)


@dataclass
class MatchStats:
    positives: int = 0
    negatives: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    # negatives whose first candidate was replaced: the own caption, a normalised copy, or a rank beyond the pool
    replaced: int = 0

    def as_dict(self) -> dict:
        return {"positives": self.positives, "negatives": self.negatives, "kinds": dict(self.kinds),
                "replaced_identical": self.replaced}


def positive_positions(ids: list[int], seed: int) -> set[int]:
    """Exactly half of the pool (the extra one of an odd pool too), chosen by a seeded hash of each id."""
    order = sorted(range(len(ids)), key=lambda i: _mix(seed, 1, ids[i]))
    return set(order[: len(ids) - len(ids) // 2])


def draw_examples(ids: list[int], captions: list[str], neighbours,
                  seed: int = 0) -> tuple[list[MatchExample], MatchStats]:
    """One example per pool image: positive or hard negative (see the module doc).

    ``ids``: a stable id per pool entry (the record index); ``captions``: its caption; ``neighbours``: the
    (n, k) caption neighbours of its image, best first, -1 padded.
    """
    import numpy as np

    n = len(ids)
    norm = [normalise_caption(c) for c in captions]
    positives = positive_positions(ids, seed)
    stats = MatchStats()
    out = []
    for i in range(n):
        if i in positives:
            out.append(MatchExample(i, i, True, KIND_POSITIVE, 0))
            stats.positives += 1
            continue
        rng = np.random.default_rng([seed & _MASK, ids[i] & _MASK])
        row = neighbours[i]
        choice, replaced = None, 0
        for kind_index in rng.permutation(len(KINDS)):
            kind = KINDS[kind_index]
            if kind == KIND_RANDOM:
                if n < 2:
                    continue
                for _ in range(64):  # another caption unless the pool is nearly all copies of this one
                    j = int(rng.integers(n))
                    if j != i and norm[j] != norm[i]:
                        choice = (j, kind)
                        break
            else:
                rank = int(kind.split("_")[1])
                j = int(row[rank]) if rank < len(row) else -1
                if j >= 0 and j != i and norm[j] != norm[i]:
                    choice = (j, kind)
            if choice:
                break
            replaced += 1
        if choice is None:
            raise ValueError(f"pool entry {ids[i]}: no caption differs from its own; the pool needs distinct captions")
        stats.negatives += 1
        stats.kinds[choice[1]] += 1
        stats.replaced += bool(replaced)
        out.append(MatchExample(i, choice[0], False, choice[1], replaced))
    return out, stats

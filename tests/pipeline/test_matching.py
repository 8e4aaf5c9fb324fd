"""Hard-negative matching: exact 50/50, the paper's candidate ranks, never the own caption or a copy."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.matching import KINDS, build_index, draw_examples, normalise_caption, search_neighbours

pytest.importorskip("faiss")


def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_index_is_cosine_not_raw_l2():
    # A long vector in another direction is nearest by raw L2 only if norms are ignored; normalised
    # inputs rank by direction.
    texts = unit([[1, 0], [0.9, 0.1], [0, 1]])
    index, info = build_index(texts, exact_limit=10)
    assert info["kind"].startswith("IndexFlatIP")
    ids = search_neighbours(index, unit([[1, 0.05]]), 3)
    assert ids[0].tolist() == [0, 1, 2]


def test_hnsw_above_the_exact_limit_finds_the_same_top_neighbour():
    rng = np.random.default_rng(0)
    texts = unit(rng.normal(size=(400, 16)))
    index, info = build_index(texts, exact_limit=100)
    assert info["kind"].startswith("IndexHNSWFlat") and info["M"] == 32 and info["efSearch"] == 512
    exact, _ = build_index(texts, exact_limit=1000)
    queries = texts[:50] + 0.01
    assert (search_neighbours(index, queries, 5)[:, 0] == search_neighbours(exact, queries, 5)[:, 0]).mean() > 0.95


def test_exactly_half_positives_seeded_and_ranks_as_the_paper():
    n = 400
    rng = np.random.default_rng(1)
    captions = [f"caption number {i}" for i in range(n)]
    neighbours = np.stack([rng.permutation(n)[:300] for _ in range(n)])
    ids = list(range(1000, 1000 + n))
    examples, stats = draw_examples(ids, captions, neighbours, seed=3)
    assert stats.positives == stats.negatives == n // 2
    assert all(e.caption == e.position for e in examples if e.positive)
    for e in examples:
        if not e.positive:
            assert e.caption != e.position
            if e.kind != "random":
                assert neighbours[e.position][int(e.kind.split("_")[1])] == e.caption
    assert set(stats.kinds) == set(KINDS) and all(v > 10 for v in stats.kinds.values())  # uniform over 6
    again, _ = draw_examples(ids, captions, neighbours, seed=3)
    assert again == examples
    other, _ = draw_examples(ids, captions, neighbours, seed=4)
    assert other != examples


def test_a_negative_is_never_the_own_caption_or_a_copy():
    n = 40
    captions = [f"picture {i}" for i in range(n)]
    captions[1] = "Picture 0!"  # a copy of 0 after normalisation
    # Every neighbour list starts with the own caption and the copy at all the paper's ranks.
    neighbours = np.array([[i if r != 2 else (1 if i == 0 else i) for r in range(300)] for i in range(n)])
    neighbours[:, 9] = np.arange(n)
    examples, stats = draw_examples(list(range(n)), captions, neighbours[:, :300], seed=0)
    for e in examples:
        if not e.positive:
            assert normalise_caption(captions[e.caption]) != normalise_caption(captions[e.position])
            assert e.kind == "random"  # every rank candidate was the own caption
    assert 0 < stats.replaced <= stats.negatives  # all but those whose first candidate was the random one


def test_odd_pool_and_small_pool():
    examples, stats = draw_examples([5, 6, 7], ["a", "b", "c"], np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]]), seed=0)
    assert (stats.positives, stats.negatives) == (2, 1)
    assert all(e.kind in ("random", "rank_2", "positive") for e in examples)

"""Forced-decoding scores through the translation layer: dedup, the persistent cache, per-pair languages."""

import math

import pytest

from pipeline.filters.quality import dual_xent
from pipeline.nllb.cache import TranslationCache
from pipeline.nllb.engine import NllbTranslator
from pipeline.translate import CachingTranslator, TranslationStats

SRCS = ["A red circle.", "Is the triangle blue?", "A red circle.", "yes"]
TGTS = ["Ein roter Kreis.", "Ist das Dreieck blau?", "Ein roter Kreis.", "ja"]
LANGS = ["deu_Latn", "fra_Latn", "deu_Latn", "deu_Latn"]


def test_scores_are_deduplicated_cached_and_equal_to_the_engines(tiny_model_dir, tmp_path):
    engine = NllbTranslator(tiny_model_dir)
    direct = [engine.score([s], [t], "eng_Latn", g)[0] for s, t, g in zip(SRCS, TGTS, LANGS)]
    cache = TranslationCache(tmp_path, engine.cache_key())
    stats = TranslationStats()
    before = engine.usage["score"]
    got = CachingTranslator(engine, cache).score(SRCS, TGTS, "eng_Latn", LANGS, stats=stats)
    assert got == pytest.approx(direct, abs=1e-5)
    assert engine.usage["score"] - before == 3  # the repeated pair is scored once
    assert (stats.score_requested, stats.score_distinct, stats.scored, stats.score_cache_hits) == (4, 3, 3, 0)

    again = TranslationStats()
    fresh = CachingTranslator(engine, TranslationCache(tmp_path, engine.cache_key()))  # a new process, same file
    assert fresh.score(SRCS, TGTS, "eng_Latn", LANGS, stats=again) == pytest.approx(got, abs=1e-6)
    assert engine.usage["score"] - before == 3 and again.score_cache_hits == 3 and again.scored == 0


def test_reverse_direction_uses_each_pairs_language_as_source(tiny_model_dir):
    engine = NllbTranslator(tiny_model_dir)
    mixed = engine.score(TGTS[:2], SRCS[:2], LANGS[:2], "eng_Latn")
    one_by_one = [engine.score([t], [s], g, "eng_Latn")[0] for t, s, g in zip(TGTS[:2], SRCS[:2], LANGS[:2])]
    assert mixed == pytest.approx(one_by_one, abs=1e-5)


def test_dual_cross_entropy_follows_the_formula():
    # H_f = 1, H_b = 3: |1 - 3| + (1 + 3) / 2 = 4
    assert dual_xent(-1.0, -3.0) == pytest.approx(4.0)
    assert dual_xent(-2.0, -2.0) == pytest.approx(2.0)  # agreement costs nothing extra
    assert dual_xent(None, -1.0) is None and dual_xent(math.nan, -1.0) is None


def _shipped_val_english(n: int) -> list[str]:
    import gzip

    from pipeline.nllb.shipped import shipped_val_dir

    with gzip.open(shipped_val_dir() / "val.en.gz", "rt", encoding="utf-8") as f:
        return [line.strip() for _, line in zip(range(n), f)]


def test_a_translation_knows_its_own_forward_score_where_a_second_pass_would_give_the_same():
    from pipeline.nllb.engine import EngineSettings
    from pipeline.nllb.shipped import shipped_model_dir

    engine = NllbTranslator(shipped_model_dir(), EngineSettings(inter_threads=1, intra_threads=1))
    english = _shipped_val_english(120)
    out = engine.translate(english, "eng_Latn", "deu_Latn")
    rescored = engine.score(english, [o.text for o in out], "eng_Latn", "deu_Latn")
    known = [(o.mean_log_prob, s) for o, s in zip(out, rescored) if o.mean_log_prob is not None]
    assert len(known) >= 0.85 * len(out)  # the rest: pieces that encode differently, no stop before the cap
    assert all(abs(a - b) < 0.02 for a, b in known), max(abs(a - b) for a, b in known)
    # cut at the cap: the decoder did not stop by itself, so its score is not the forced-decoding one
    capped = engine.translate(english[:5], "eng_Latn", "deu_Latn", max_decoding_length=3)
    assert all(o.mean_log_prob is None for o in capped)


def test_the_filters_forward_score_of_a_fresh_translation_costs_no_second_pass(tmp_path):
    from pipeline.nllb.engine import EngineSettings
    from pipeline.nllb.shipped import shipped_model_dir

    engine = NllbTranslator(shipped_model_dir(), EngineSettings(inter_threads=1, intra_threads=1))
    english = _shipped_val_english(40)
    for cache in (None, TranslationCache(tmp_path, engine.cache_key())):
        translator, stats = CachingTranslator(engine, cache), TranslationStats()
        out = translator.translate(english, "eng_Latn", "deu_Latn", stats=stats)
        known = sum(o.mean_log_prob is not None for o in out)
        before = engine.usage["score"]
        scores = translator.score(english, [o.text for o in out], "eng_Latn", "deu_Latn", stats=stats)
        assert stats.score_from_translation == known and stats.score_cache_hits == known
        assert engine.usage["score"] - before == len(english) - known == stats.scored
        assert scores == pytest.approx(engine.score(english, [o.text for o in out], "eng_Latn", "deu_Latn"), abs=0.02)

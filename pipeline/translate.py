"""Translate stage: English text fields of a batch into each row's target language.

Each distinct (cleaned text, target language) is translated once per chunk and fanned back out;
rows assigned to English keep their text untranslated. A ``CachingTranslator`` wraps the engine with
the persistent cache (``pipeline/nllb/cache.py``), so strings seen by any earlier run or worker are
not translated again. ``TranslationStats`` counts what was asked, what was distinct, what the cache
served and what the model translated; ``process_chunk`` writes them next to each processed chunk.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl

from pipeline.io import write_json_atomic
from pipeline.languages import SOURCE_NLLB
from pipeline.nllb.cache import TranslationCache
from pipeline.nllb.engine import Translation, clean_source, load_translator

# (English column, translated column) pairs the stage fills. VQA answers are translated as a
# vocabulary with their own acceptance rule: see ``pipeline/answers.py``.
TRANSLATED_FIELDS: tuple[tuple[str, str], ...] = (("text_en", "text_tgt"), ("context_en", "context_tgt"))
TRUNCATED_COLUMN = "translation_truncated"
STATS_SUFFIX = ".stats.json"


@dataclass
class TranslationStats:
    """Counters of one chunk (or a whole run, by ``add``). Strings are counted per target language."""

    requested: int = 0  # non-empty strings asked for (one per row and field)
    empty: int = 0  # empty or blank strings (answered without the model)
    distinct: int = 0  # distinct (cleaned text, source, target language) triples among the requested
    cache_hits: int = 0  # distinct strings served by the persistent cache
    translated: int = 0  # distinct strings the model translated
    truncated: int = 0  # distinct strings longer than the input limit (cut, flagged)
    decoded_tokens: int = 0  # decoder tokens spent (the cost)
    score_requested: int = 0  # (source, target) pairs asked to be scored by forced decoding
    score_distinct: int = 0  # distinct (source, target, languages) among them
    score_cache_hits: int = 0  # distinct pairs served by the persistent cache
    scored: int = 0  # distinct pairs the model scored (one teacher-forced pass each, no decoding)
    score_from_translation: int = 0  # fresh translations whose forward score their decoding gave (no pass)

    def add(self, other: "TranslationStats") -> "TranslationStats":
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)
        return self

    @property
    def dedup_factor(self) -> float:
        """Requested strings per distinct string (1.0 = no repetition)."""
        return self.requested / self.distinct if self.distinct else 1.0

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.distinct if self.distinct else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "dedup_factor": round(self.dedup_factor, 4),
                "cache_hit_rate": round(self.cache_hit_rate, 4)}

    @classmethod
    def from_dict(cls, data: dict) -> "TranslationStats":
        return cls(**{k: int(data.get(k, 0)) for k in asdict(cls())})


def stats_path(processed_chunk: str | Path) -> Path:
    """Sidecar of a processed chunk: ``chunk-00042.parquet`` -> ``chunk-00042.stats.json``."""
    path = Path(processed_chunk)
    return path.with_name(path.name.removesuffix(".parquet") + STATS_SUFFIX)


def write_stats_sidecar(processed_chunk: str | Path, stats: TranslationStats, templates: dict | None = None,
                        template_texts: dict | None = None) -> Path:
    """Write a chunk's counters next to it (atomically): ``{"translation": {...}, "templates": {...},
    "template_texts": {lang: {"kept": {task: [...]}, "dropped": [[task, text, reason], ...]}}}``."""
    path = stats_path(processed_chunk)
    write_json_atomic({"translation": stats.as_dict(), "templates": templates or {},
                       "template_texts": template_texts or {}}, path)
    return path


class CachingTranslator:
    """An engine plus deduplication and the persistent cache, with the engine's ``translate`` and
    ``score`` interfaces. Everything else (``sp``, ``language_token``...) is the engine's own.
    """

    # Scores known from decoding kept in memory (without a persistent cache) until this many, then dropped.
    OWN_SCORES_KEPT = 200_000

    def __init__(self, engine, cache=None):
        self.engine = engine
        self.cache = cache
        self.own_scores: dict[tuple[str, str, str, str], float] = {}

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def translate(
        self, texts: list[str], src_lang: str | list[str], tgt_lang: str | list[str],
        stats: TranslationStats | None = None, **options,
    ) -> list[Translation]:
        """Translations of ``texts`` in order; each distinct (cleaned text, source, target) is looked up
        or translated once.

        ``src_lang``/``tgt_lang`` are one language, or one per text: all cache misses of all language
        pairs then go to the engine in one call, so batches stay full however rows spread over languages.
        """
        stats = stats if stats is not None else TranslationStats()
        if not texts:
            return []
        sources = _per_text(src_lang, len(texts), "source")
        targets = _per_text(tgt_lang, len(texts), "target")
        keys = [(clean_source(t), s, g) for t, s, g in zip(texts, sources, targets)]
        unique = list(dict.fromkeys(k for k in keys if k[0]))
        n_empty = sum(1 for k in keys if not k[0])
        stats.empty += n_empty
        stats.requested += len(texts) - n_empty
        stats.distinct += len(unique)
        found: dict[tuple[str, str, str], Translation] = {}
        use_cache = self.cache is not None and not options
        if use_cache:
            for (src, tgt), group in _group_by_pair(unique).items():
                for text, (out, truncated) in self.cache.get_many(group, src, tgt).items():
                    found[(text, src, tgt)] = Translation(text=out, truncated=truncated)
            stats.cache_hits += len(found)
        missing = [k for k in unique if k not in found]
        if missing:
            results = self.engine.translate(
                [t for t, _, _ in missing], _one_or_list([s for _, s, _ in missing]),
                _one_or_list([g for _, _, g in missing]), **options,
            )
            stats.translated += len(missing)
            stats.decoded_tokens += sum(r.decoded_tokens for r in results)
            found.update(zip(missing, results))
            if not options:
                stats.score_from_translation += self._keep_own_scores(missing, results)
            if use_cache:
                new: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
                for (text, src, tgt), r in zip(missing, results):
                    new.setdefault((src, tgt), []).append((text, r.text, r.truncated))
                for (src, tgt), items in new.items():
                    self.cache.put_many(items, src, tgt)
        stats.truncated += sum(1 for k in unique if found[k].truncated)
        return [found[k] if k[0] else Translation(text="") for k in keys]


    def _keep_own_scores(self, keys: list[tuple[str, str, str]], results: list[Translation]) -> int:
        """Keep the forward score of each fresh translation that its decoding already gave
        (``Translation.mean_log_prob``): the filter's forward score of the same pair then costs no second
        pass (a score cache hit). Into the persistent cache when there is one, else into memory; returns
        how many."""
        own = [((text, clean_source(r.text), src, tgt), r.mean_log_prob) for (text, src, tgt), r in zip(keys, results)
               if getattr(r, "mean_log_prob", None) is not None and r.text]
        if self.cache is not None:
            groups: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
            for (a, b, src, tgt), value in own:
                groups.setdefault((src, tgt), []).append((a, b, value))
            for (src, tgt), items in groups.items():
                self.cache.put_scores(items, src, tgt)
            return len(own)
        if len(self.own_scores) + len(own) > self.OWN_SCORES_KEPT:
            self.own_scores.clear()
        self.own_scores.update(own)
        return len(own)

    def score(
        self, src_texts: list[str], tgt_texts: list[str], src_lang: str | list[str], tgt_lang: str | list[str],
        stats: TranslationStats | None = None,
    ) -> list[float]:
        """Forced-decoding mean log-probs of ``tgt_texts`` given ``src_texts``, in order: each distinct
        (cleaned source, cleaned target, languages) is looked up or scored once, and all misses of all
        language pairs go to the engine in one call (its token-budget batches stay full)."""
        stats = stats if stats is not None else TranslationStats()
        if not src_texts:
            return []
        sources = _per_text(src_lang, len(src_texts), "source")
        targets = _per_text(tgt_lang, len(tgt_texts), "target")
        keys = [(clean_source(a), clean_source(b), s, g) for a, b, s, g in zip(src_texts, tgt_texts, sources, targets)]
        unique = list(dict.fromkeys(keys))
        stats.score_requested += len(keys)
        stats.score_distinct += len(unique)
        found = {k: self.own_scores[k] for k in unique if k in self.own_scores}
        if self.cache is not None:
            groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
            for a, b, s, g in unique:
                groups.setdefault((s, g), []).append((a, b))
            for (s, g), pairs in groups.items():
                for (a, b), value in self.cache.get_scores(pairs, s, g).items():
                    found[(a, b, s, g)] = value
        stats.score_cache_hits += len(found)
        missing = [k for k in unique if k not in found]
        if missing:
            values = self.engine.score([a for a, _, _, _ in missing], [b for _, b, _, _ in missing],
                                       _one_or_list([s for _, _, s, _ in missing]),
                                       _one_or_list([g for _, _, _, g in missing]))
            stats.scored += len(missing)
            found.update(zip(missing, values))
            if self.cache is not None:
                new: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
                for (a, b, s, g), v in zip(missing, values):
                    new.setdefault((s, g), []).append((a, b, v))
                for (s, g), items in new.items():
                    self.cache.put_scores(items, s, g)
        return [found[k] for k in keys]


def _per_text(value: str | list[str], n: int, what: str) -> list[str]:
    if isinstance(value, str):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"{n} texts but {len(value)} {what} languages")
    return list(value)


def _one_or_list(values: list[str]) -> str | list[str]:
    """One value when all are equal: engines with a single-language interface work too."""
    return values[0] if len(set(values)) == 1 else values


def _group_by_pair(keys) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for text, src, tgt in keys:
        groups.setdefault((src, tgt), []).append(text)
    return groups


def open_translator(model_dir: str | Path, settings, cache_dir: str | Path | None = None) -> CachingTranslator:
    """The per-process engine (``load_translator``) with the persistent cache under ``cache_dir`` (None = off)."""
    return _cached_caching_translator(
        str(Path(model_dir).resolve()), settings, str(Path(cache_dir).resolve()) if cache_dir else None, os.getpid()
    )


@lru_cache(maxsize=4)
def _cached_caching_translator(model_dir: str, settings, cache_dir: str | None, pid: int) -> CachingTranslator:
    engine = load_translator(model_dir, settings)
    cache = TranslationCache(cache_dir, engine.cache_key()) if cache_dir else None
    return CachingTranslator(engine, cache)


def as_caching(translator) -> CachingTranslator:
    return translator if isinstance(translator, CachingTranslator) else CachingTranslator(translator)


def translate_many(
    translator, texts: list[str], src_lang: str | list[str], tgt_lang: str | list[str],
    stats: TranslationStats | None = None,
) -> list[Translation]:
    """Translations of ``texts`` in order, deduplicated (and cached when ``translator`` has a cache)."""
    return as_caching(translator).translate(texts, src_lang, tgt_lang, stats=stats)


def translate_texts(
    translator, texts: list[str], src_lang: str, tgt_lang: str, stats: TranslationStats | None = None
) -> dict[str, str]:
    """Distinct non-empty ``texts`` -> translation (one engine call per language)."""
    unique = sorted({t for t in texts if t and t.strip()})
    if not unique:
        return {}
    return {t: r.text for t, r in zip(unique, translate_many(translator, unique, src_lang, tgt_lang, stats))}


def translate_frame(
    frame: pl.DataFrame,
    translator,
    fields: tuple[tuple[str, str], ...] = TRANSLATED_FIELDS,
    src_lang: str = SOURCE_NLLB,
    stats: TranslationStats | None = None,
) -> pl.DataFrame:
    """Add the translated columns of ``fields`` for every row (``lang_nllb`` is the target).

    Also adds ``translation_truncated``: the source of the first field was longer than the engine's
    input limit and was cut before translation (the row is kept and flagged, never crashes the run).
    """
    stats = stats if stats is not None else TranslationStats()
    out = frame
    for n, (src_col, tgt_col) in enumerate(fields):
        if src_col not in frame.columns:
            continue
        langs, sources = frame["lang_nllb"].to_list(), frame[src_col].to_list()
        # Every language in one engine call (per-row target prefixes): full batches on 95 languages.
        todo = [(text, lang) for text, lang in zip(sources, langs) if text is not None and lang != src_lang]
        results = translate_many(translator, [t for t, _ in todo], src_lang, [g for _, g in todo], stats)
        mapping: dict[tuple[str, str], Translation] = {(g, t): r for (t, g), r in zip(todo, results)}
        mapping.update({(g, t): Translation(text=t) for t, g in zip(sources, langs) if t is not None and g == src_lang})
        hits = [None if text is None else mapping.get((lang, text)) for lang, text in zip(langs, sources)]
        out = out.with_columns(pl.Series(tgt_col, [None if h is None else h.text for h in hits], dtype=pl.String))
        if n == 0:
            truncated = [bool(h and h.truncated) for h in hits]
            out = out.with_columns(pl.Series(TRUNCATED_COLUMN, truncated, dtype=pl.Boolean))
    return out

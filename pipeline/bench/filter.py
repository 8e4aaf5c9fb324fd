"""``mblip bench filter``: the translate + filter stage with a decoded back-translation vs a reverse score.

Both sides run on the same rows: every English line of the Multi30k val split that ``mblip eval-filter``
uses, once per target language (de, fr, cs by default), through ``translate_frame`` and then
``apply_quality_filter`` with the same engine, each side with its own empty persistent cache (so
neither reuses the other's translations):

(a) ``reverse="decode"``: decode the back-translation, chrF++ against the source, forward score and
    source margin (one scoring pass per contrast source, ``--contrasts``: 4 under the shipped model's rules);
(b) ``reverse="score"``: forward and reverse forced-decoding scores (no second decoding), their dual
    conditional cross-entropy and the same source margin.

A fresh translation's forward score comes from its own decoding in both (``Translation.mean_log_prob``).
The sides alternate over ``repeats`` runs and each keeps its fastest. Filter quality is measured on the
labelled val set of ``evaluate.py`` (human pairs kept, each corruption kind rejected) with each side's
signals and the thresholds of ``rules.load_rules`` (the shipped model's calibration by default). The
model signals of the labelled set are computed once (``reverse="both"``) and each side decides on its
own columns: the signals of one mode do not depend on whether the other's are computed too.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import polars as pl

from pipeline.bench.corpus import chunk_strings
from pipeline.bench.models import DEFAULT_CACHE, engine_threads, ensure_ct2_model
from pipeline.filters.contrast import CONTRAST_SOURCES, resolve_contrasts
from pipeline.filters.evaluate import build_labelled_set, default_data_dir, format_report, read_multi30k, summarise
from pipeline.filters.quality import DEFAULT_REVERSE, REVERSE_SIGNALS, SIGNAL_SCHEMA, apply_quality_filter
from pipeline.filters.rules import FilterRules, decide, load_rules
from pipeline.languages import SOURCE_NLLB, get_language
from pipeline.nllb.cache import TranslationCache
from pipeline.nllb.engine import EngineSettings, NllbTranslator, clean_source
from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir
from pipeline.translate import CachingTranslator, TranslationStats, translate_frame

SIDES = {"decode": "back-translation + chrF++", "score": "reverse score"}
# Every cheap check off and no model threshold that could stop scoring: each row gets every model signal.
MODEL_SIGNALS_ONLY = {
    **dict.fromkeys(("min_script_share", "max_copy_overlap", "max_repeat_run", "max_repeat_ngram", "max_compression",
                     "min_length_ratio", "max_length_ratio", "langid_max_rank", "max_en_leak", "max_char_repeat",
                     "max_length_ratio_unscored")),
    "reject_inflated_short": False, "require_numbers": False, "check_answers": False,
}


@dataclass
class StageTiming:
    reverse: str
    seconds: float
    rows: int
    decoded_inputs: int
    scored: int
    kept: int


def stage_rows(data: dict[str, list[str]], langs: tuple[str, ...]) -> pl.DataFrame:
    """Every English line once per language, as the stage sees rows after assignment."""
    rows = [(f"{lang}-{i:05d}", en.strip(), lang, get_language(lang).nllb)
            for lang in langs for i, en in enumerate(data["en"]) if en.strip()]
    return pl.DataFrame(rows, schema=["example_id", "text_en", "lang", "lang_nllb"], orient="row")


def run_stage(engine, rows: pl.DataFrame, rules, reverse: str, model_languages,
              contrasts: int = CONTRAST_SOURCES) -> StageTiming:
    """Translate + filter ``rows`` with ``reverse`` through a fresh persistent cache; wall time."""
    with tempfile.TemporaryDirectory(prefix="mblip-bench-filter-") as tmp:
        cache = TranslationCache(tmp, engine.cache_key())
        translator = CachingTranslator(engine, cache)
        stats = TranslationStats()
        before = dict(engine.usage)
        t0 = time.perf_counter()
        frame = translate_frame(rows, translator, stats=stats)
        out = apply_quality_filter(frame, translator, rules, model_languages=model_languages, reverse=reverse,
                                   stats=stats, contrasts=contrasts)
        seconds = time.perf_counter() - t0
        cache.close()
    decoded = engine.usage["translate"] - before["translate"]
    return StageTiming(reverse, seconds, rows.height, decoded, stats.scored, int((out["status"] == "kept").sum()))


HEURISTICS = "heuristics only"


def filter_quality(labelled: pl.DataFrame, translator, rules, model_languages,
                   contrasts: int = CONTRAST_SOURCES) -> dict[str, list]:
    """Per side: the ``evaluate.summarise`` rows (human kept, each kind rejected) on ``labelled``; first
    the heuristics alone (every model signal null, as with ``filter.backtranslate: false``)."""
    scored = apply_quality_filter(labelled, translator, rules, model_languages=model_languages,
                                  score_rejected=False, reverse="both", contrasts=contrasts)
    no_model = scored.with_columns([pl.lit(None, dtype=SIGNAL_SCHEMA[c]).alias(c) for c in REVERSE_SIGNALS["both"]])
    results = {HEURISTICS: summarise(decide(no_model.drop("status", "reject_reason"), rules))}
    for side, name in SIDES.items():
        unused = [c for c in REVERSE_SIGNALS["both"] if c not in REVERSE_SIGNALS[side]]
        frame = scored.with_columns([pl.lit(None, dtype=SIGNAL_SCHEMA[c]).alias(c) for c in unused])
        results[name] = summarise(decide(frame.drop("status", "reject_reason"), rules))
    return results


def bench_filter(model_dir=None, data_dir=None, langs: tuple[str, ...] = ("de", "fr", "cs"), limit: int | None = None,
                 repeats: int = 1, rules_path=None, device: str = "cpu", compute_type: str = "auto",
                 threads: int = 0, contrasts: int | None = None) -> dict:
    """Stage timings of both sides, the quality table, and ``speedup_vs_backtranslation``; ``contrasts``
    other sources per source margin (None: as a run with these rules, ``resolve_contrasts``)."""
    model_languages = None
    if model_dir is None:
        model_dir = shipped_model_dir()
        model_languages = frozenset(t for s, t in SHIPPED_DIRECTIONS if s == SOURCE_NLLB)
    rules = load_rules(rules_path, shipped_model=rules_path is None and model_languages is not None)
    contrasts = resolve_contrasts(contrasts, rules)
    data = read_multi30k(data_dir or default_data_dir("val"), "val", langs)
    if limit is not None:
        data = {k: v[:limit] for k, v in data.items()}
    engine = NllbTranslator(model_dir, EngineSettings(device=device, compute_type=compute_type,
                                                      **engine_threads(threads, device)))
    rows = stage_rows(data, langs)
    best: dict[str, StageTiming] = {}
    for _ in range(repeats):  # alternate the sides so a busy machine slows both alike
        for side in SIDES:
            t = run_stage(engine, rows, rules, side, model_languages, contrasts)
            best[side] = t if side not in best or t.seconds < best[side].seconds else best[side]
    quality = filter_quality(build_labelled_set(data, langs), engine, rules, model_languages, contrasts)
    return {"stage": best, "quality": quality, "speedup": best["decode"].seconds / best["score"].seconds,
            "contrasts": contrasts,
            "device": engine.device, "compute_type": engine.compute_type, "model": str(model_dir)}


# Output pieces per source piece of a trained model (Multi30k en->de: about 1.1; back into English about
# 0.9): a random-weight model never stops by itself and would decode to the length cap instead.
FORWARD_LENGTH_RATIO = 1.1


SENTENCE_END = frozenset("▁.!?。")


def stand_in_text(source_pieces: list[str], n: int) -> str:
    """One sentence of about ``n`` real pieces: the source's own pieces (sentence ends dropped), repeated.

    A random-weight model decodes vocabulary entries its tokenizer never produces ("madeupword27628"): as
    text they re-encode to about ten times as many pieces, and every later pass over them (scores, the
    back-translation) would be timed on inputs ten times too long."""
    words = [p for p in source_pieces if p not in SENTENCE_END] or ["▁a"]
    pieces = [words[i % len(words)] for i in range(n)]
    return "".join(pieces).replace("▁", " ").strip()


class RealLengthTranslator(NllbTranslator):
    """A random-weight engine that decodes as long as a trained model would: each input's output is forced
    to ``FORWARD_LENGTH_RATIO`` x its source pieces out of English and the inverse into English (grouped by
    source length, one engine call per group), and its text is a sentence of that many real pieces
    (``stand_in_text``) so the filter's passes over it are as long as over a trained model's output; like a
    trained model's, its forward score is known from the decoding. Only for timing the model at a real shape."""

    def translate(self, texts, src_lang, tgt_lang, **options):
        if options:
            return super().translate(texts, src_lang, tgt_lang, **options)
        sources = self.language_tokens_for(src_lang, len(texts), "source")
        targets = self.language_tokens_for(tgt_lang, len(texts), "target")
        source_pieces = self.sp.encode([clean_source(t) for t in texts], out_type=str)
        lengths = [len(p) for p in source_pieces]
        groups: dict[int, list[int]] = {}
        for i, (n, src) in enumerate(zip(lengths, sources)):
            ratio = FORWARD_LENGTH_RATIO if src == SOURCE_NLLB else 1 / FORWARD_LENGTH_RATIO
            groups.setdefault(max(1, round(ratio * n)), []).append(i)
        def run(item: tuple[int, list[int]]) -> list:
            n, items = item
            return super(RealLengthTranslator, self).translate(
                [texts[i] for i in items], [sources[i] for i in items], [targets[i] for i in items],
                min_decoding_length=n, max_decoding_length=n)

        out: list = [None] * len(texts)
        before, started = self.model_seconds["translate"], time.perf_counter()
        # the length groups side by side, as one call's buckets run on the engine's replicas
        with ThreadPoolExecutor(max_workers=self.threads[0]) as pool:
            for (n, items), done in zip(groups.items(), pool.map(run, groups.items())):
                for i, r in zip(items, done):
                    # a trained model stops by itself and re-encodes to its own pieces (91-95% of outputs on
                    # Multi30k val): its forward score is known from the decoding (``NllbTranslator.own_score``)
                    out[i] = replace(r, text=stand_in_text(source_pieces[i], n), mean_log_prob=r.log_prob)
        self.model_seconds["translate"] = before + time.perf_counter() - started  # wall time, not the sum
        return out


@dataclass
class ModelCost:
    """Seconds inside the model for one translation of some rows and for each reverse mode's filter calls."""

    shape: str
    rows: int
    translation: float
    filter: dict[str, float]  # reverse mode -> seconds of its model calls (forward and reverse)
    default: str = DEFAULT_REVERSE
    decoded: dict[str, int] = field(default_factory=dict)  # reverse mode -> inputs its filter decoded
    decoding: dict[str, float] = field(default_factory=dict)  # reverse mode -> of its seconds, decoding
    scored: dict[str, int] = field(default_factory=dict)  # reverse mode -> pairs it scored (one pass each)
    own_scores: int = 0  # forward scores the translation's own decoding gave (no pass)
    contrasts: int = CONTRAST_SOURCES  # other sources per source margin


def bench_filter_cost(shape: str = "600m", strings: int = 400, lang: str = "de", device: str = "cpu",
                      compute_type: str = "auto", threads: int = 0, repeats: int = 1, cache_dir=None,
                      contrasts: int | None = None) -> ModelCost:
    """The model side of the filter at a real model shape (random weights): the same rows translated, then
    filtered with each reverse mode (``decode``: back-translation decoded + forward and margin scores;
    ``score``: forward, margin and reverse forced-decoding scores), every model signal on every row, as a
    run does it: one translator (and persistent cache, empty at the start of each mode) for the translation
    and the filter, so the forward score comes from the translation's own decoding where it can
    (``Translation.mean_log_prob``). Times are the engine's own seconds inside CTranslate2, so the pipeline
    around it does not count on either side. Every decoding (translation and back-translation) is as long
    as a trained model's (``RealLengthTranslator``); each margin has ``contrasts`` other sources (None:
    what a run with the default filter rules uses, ``resolve_contrasts``; 0 = no margin).
    """
    contrasts = resolve_contrasts(contrasts, FilterRules())
    ct2_dir = ensure_ct2_model(shape, "int8" if device == "cpu" else "float16", cache_dir or DEFAULT_CACHE)
    engine = RealLengthTranslator(ct2_dir, EngineSettings(device=device, compute_type=compute_type,
                                                          **engine_threads(threads, device)))
    texts = chunk_strings(strings, seed=11)
    rows = pl.DataFrame({"example_id": [f"r{i:05d}" for i in range(len(texts))], "text_en": texts,
                         "lang": [lang] * len(texts), "lang_nllb": [get_language(lang).nllb] * len(texts)})
    everything_on = FilterRules(**MODEL_SIGNALS_ONLY)
    best: dict[str, float] = {}
    cost = ModelCost(shape, rows.height, 0.0, {}, contrasts=contrasts)
    for _ in range(repeats):  # alternate; keep each side's fastest
        for mode in SIDES:
            with tempfile.TemporaryDirectory(prefix="mblip-bench-cost-") as tmp:
                translator = CachingTranslator(engine, TranslationCache(tmp, engine.cache_key()))
                stats = TranslationStats()
                before = engine.model_seconds["translate"]
                frame = translate_frame(rows, translator, stats=stats)
                best["translation"] = min(best.get("translation", float("inf")),
                                          engine.model_seconds["translate"] - before)
                seconds, decoded = dict(engine.model_seconds), engine.usage["translate"]
                apply_quality_filter(frame, translator, everything_on, reverse=mode, score_rejected=True, stats=stats,
                                     contrasts=contrasts)
                spent = {k: engine.model_seconds[k] - seconds[k] for k in seconds}
                if sum(spent.values()) < best.get(mode, float("inf")):
                    best[mode] = sum(spent.values())
                    cost.decoding[mode] = spent["translate"]
                cost.decoded[mode] = engine.usage["translate"] - decoded
                cost.scored[mode] = stats.scored
                cost.own_scores = stats.score_from_translation
                translator.cache.close()
    cost.translation = best["translation"]
    cost.filter = {mode: best[mode] for mode in SIDES}
    return cost


def print_cost_report(cost: ModelCost) -> float:
    margin = (f"{cost.contrasts} contrast source(s) per source margin" if cost.contrasts else
              "no source margin (0 contrast sources: no margin rule is on)")
    print(f"model side of the filter, {cost.shape} shape (random weights), {cost.rows} rows into one language, "
          f"{margin}; seconds inside the model")
    print(f"{'one translation (forward decode)':<42} {cost.translation:8.2f} s  "
          f"({cost.own_scores} forward scores known from it)")
    for mode, seconds in cost.filter.items():
        print(f"{'filter, reverse=' + mode + ' (' + SIDES[mode] + ')':<42} {seconds:8.2f} s  "
              f"{seconds / cost.translation:.3f} x translation: decoding {cost.decoding.get(mode, 0.0):.2f} s "
              f"({cost.decoded.get(mode, 0)} inputs), scoring {seconds - cost.decoding.get(mode, 0.0):.2f} s "
              f"({cost.scored.get(mode, 0)} pairs)")
    ratio = cost.filter[cost.default] / cost.translation
    print(f"model_cost_vs_second_translation: {ratio:.3f}  (default reverse={cost.default}; goal <= 0.6)")
    return ratio


def quality_holds(quality: dict[str, list], side: str = SIDES["score"], floor: float = 0.95) -> bool:
    """Every corruption kind caught and human pairs kept at ``floor`` or better on ``side``."""
    return all(r.rate >= floor for r in quality[side] if r.label != "all negatives")


def print_report(result: dict) -> float:
    print(f"model {result['model']} on {result['device']} ({result['compute_type']}), "
          f"{result['contrasts']} contrast source(s) per source margin")
    for side, t in result["stage"].items():
        print(f"{SIDES[side]:<26} {t.rows} rows translated + filtered in {t.seconds:.2f} s "
              f"({t.rows / t.seconds:.1f} rows/s; {t.decoded_inputs} inputs decoded, {t.scored} pairs scored, "
              f"{t.kept} kept)")
    print()
    print(format_report(result["quality"]))
    print(f"\nquality_ok (every kind >= 95% caught, >= 95% human kept): {quality_holds(result['quality'])}")
    print(f"speedup_vs_backtranslation: {result['speedup']:.2f}")
    return result["speedup"]

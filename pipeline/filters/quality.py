"""The quality-filter stage: every signal as its own column, then the keep/reject decision.

``apply_quality_filter(frame, translator, rules)`` takes rows with ``text_en``, ``text_tgt`` and
``lang_nllb`` (optionally ``answer_en``/``answer_tgt``) and returns the same rows, in the same order,
with the ``score_*``/``sig_*`` columns of ``SIGNAL_SCHEMA``, ``status`` and ``reject_reason``. With a
translator it also runs the model signals of the reverse mode (``REVERSE_MODES``): the forward
forced-decoding score (``score_fwd_logprob``) and either the reverse score (``score_bt_logprob``,
``score_dual_xent``; no decoding) or the decoded back-translation with chrF++ and the source margin;
without one those stay null and their rules do not apply. Bad rows (missing text, unknown language)
are rejected with an ``input:`` reason and null signals; they never stop the batch.

(Over 300 lines on purpose: both signal passes share the row masks and ``SIGNAL_SCHEMA`` they fill.)
"""

from __future__ import annotations

import logging

import polars as pl

from pipeline.filters import signals
from pipeline.filters.backtranslation import backtranslate_frame
from pipeline.filters.contrast import CONTRAST_SOURCES, contrast_sources
from pipeline.filters.langid import langid_label, rank_language
from pipeline.filters.numbers import numbers_consistent
from pipeline.filters.rules import FilterRules, as_scored, decide
from pipeline.filters.scripts import SCRIPT_UNICODE_NAMES, script_share
from pipeline.languages import SOURCE_NLLB, UnknownLanguageError, get_language
from pipeline.schema import STATUS_KEPT
from pipeline.translate import as_caching

log = logging.getLogger(__name__)

# Signal columns this stage adds (also part of schema.TARGET_SCHEMA).
SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "sig_input_error": pl.String(),  # why the row could not be scored (empty text, unknown language)
    "score_script_share": pl.Float64(),  # share (0-1) of letters in the target's script
    "score_copy_overlap": pl.Float64(),  # share (0-1) of source words found verbatim in the translation
    "score_repeat_run": pl.Int64(),  # longest back-to-back run of a repeated unit (1 = none)
    "score_repeat_ngram": pl.Float64(),  # share (0-1) of repeated word 3-grams / character 4-grams
    "score_compression": pl.Float64(),  # UTF-8 bytes / zlib bytes
    "score_char_repeat": pl.Int64(),  # most back-to-back copies of a 2-5 character unit ("zezezeze" = 4)
    "score_en_leak": pl.Float64(),  # share (0-1) of the source's content words left in English (borrowings aside)
    "score_length_ratio": pl.Float64(),  # target/source characters over the script's expected ratio
    "sig_short_inflated": pl.Boolean(),  # short input (<= 3 words) turned into a sentence; null if not short
    "sig_numbers_ok": pl.Boolean(),  # every source number survives; null when there are none
    "sig_langid_top": pl.String(),  # py3langid's best label for the translation
    "score_langid_rank": pl.Int64(),  # rank (1 = best) of the target language; null if not covered
    "score_langid_prob": pl.Float64(),  # its probability
    "sig_answer_issue": pl.String(),  # first failing check of answer_tgt (VQA rows), null when fine
    "score_fwd_logprob": pl.Float64(),  # forced-decoding mean log-prob per token of text_tgt
    "score_fwd_margin": pl.Float64(),  # score_fwd_logprob minus the same under other sources (a fixed pool)
    "score_sentence_margin": pl.Float64(),  # lowest source margin of the sentences of a multi-sentence output
    "backtranslation_en": pl.String(),
    "score_bt_chrf": pl.Float64(),  # chrF++ (0-100) of backtranslation_en against text_en
    "score_bt_logprob": pl.Float64(),  # reverse forced-decoding mean log-prob per token of text_en given text_tgt
    "score_dual_xent": pl.Float64(),  # dual conditional cross-entropy (nats/token, lower = better)
}


def _input_errors(en: list, tgt: list, langs: list) -> tuple[list[str | None], list[str | None]]:
    """Per row: an input error (or None) and the target's project language code (or None)."""
    errors: list[str | None] = []
    codes: list[str | None] = []
    for text_en, text_tgt, lang in zip(en, tgt, langs):
        code = None
        if lang is None or not str(lang).strip():
            error = "missing_lang"
        else:
            try:
                language = get_language(lang)
                code = language.code if language.nllb == lang else None
                error = None if code else "unknown_lang"  # project codes must be resolved upstream
            except UnknownLanguageError:
                error = "unknown_lang"
        if error is None:
            if text_en is None:
                error = "missing_text_en"
            elif not text_en.strip():
                error = "empty_text_en"
            elif text_tgt is None:
                error = "missing_text_tgt"
            elif not text_tgt.strip():
                error = "empty_text_tgt"
        errors.append(error)
        codes.append(code if error is None else None)
    return errors, codes


def _answer_issues(
    answers_en: list, answers_tgt: list, scripts: list[str], langs: list[str | None], rules: FilterRules
) -> list[str | None]:
    """First failing check of each translated answer: script, inflation, numbers (None when fine).

    Answers are one or two words, so the copy, repetition and length-ratio checks do not apply
    ("pizza" -> "pizza" is right in many languages).
    """
    thresholds: dict[str, object] = {}
    issues: list[str | None] = []
    for a_en, a_tgt, script, lang in zip(answers_en, answers_tgt, scripts, langs):
        if a_en is None or not a_en.strip() or lang is None:
            issues.append(None)
            continue
        if a_tgt is None or not a_tgt.strip():
            issues.append("empty")
            continue
        if lang not in thresholds:
            thresholds[lang] = rules.for_language(lang)
        min_share = thresholds[lang].min_script_share
        # Every capitalised word of an answer may be a name ("Nike", "New York").
        names = frozenset(w.lower() for w in a_en.split() if w[:1].isupper())
        share = script_share(a_tgt, script, names)
        if min_share is not None and share is not None and share < min_share:
            issues.append("wrong_script")
        elif signals.short_input_inflated([a_en], [a_tgt], [script])[0]:
            issues.append("inflated")
        elif numbers_consistent(a_en, a_tgt, lang_code_of(lang)) is False:
            issues.append("numbers_lost")
        else:
            issues.append(None)
    return issues


def lang_code_of(nllb: str) -> str:
    return get_language(nllb).code


def compute_heuristic_signals(frame: pl.DataFrame, rules: FilterRules | None = None) -> pl.DataFrame:
    """All signals that need no model, one column each (see ``SIGNAL_SCHEMA``)."""
    rules = rules or FilterRules()
    for col in ("text_en", "text_tgt", "lang_nllb"):
        if col not in frame.columns:
            raise ValueError(f"quality filter needs a {col!r} column; got {frame.columns}")
    # An all-null column arrives with dtype Null (e.g. from JSON where every value was missing).
    text_cols = [c for c in ("text_en", "text_tgt", "lang_nllb", "answer_en", "answer_tgt") if c in frame.columns]
    frame = frame.with_columns([pl.col(c).cast(pl.String) for c in text_cols])
    en_raw = frame["text_en"].to_list()
    tgt_raw = frame["text_tgt"].to_list()
    langs = frame["lang_nllb"].to_list()
    errors, codes = _input_errors(en_raw, tgt_raw, langs)
    # English rows are the source itself (mBLIP keeps English at its mC4 share, untranslated): the
    # translation checks (copy of the source, script, length, language, answers) do not apply, so
    # their signals stay null ("not applicable") and only the input checks can reject them.
    untranslated = [e is None and lang == SOURCE_NLLB for e, lang in zip(errors, langs)]
    ok = [e is None for e in errors]
    en = [t if good else "" for t, good in zip(en_raw, ok)]
    tgt = [t if good else "" for t, good in zip(tgt_raw, ok)]
    scripts = [lang.partition("_")[2] if good else "Latn" for lang, good in zip(langs, ok)]
    scripts = [s if s in SCRIPT_UNICODE_NAMES else "Latn" for s in scripts]

    names = [signals.source_names(s) for s in en]
    share = [script_share(t, s, n) for t, s, n in zip(tgt, scripts, names)]
    copy = signals.copy_overlap(en, tgt)
    run = signals.longest_repeat_run(tgt, scripts)
    ngram = signals.repeated_ngram_share(tgt, scripts)
    compression = signals.compression_ratio(tgt)
    stutter = signals.char_stutter(tgt)
    leak = signals.english_leak(en, tgt, [lang if good else SOURCE_NLLB for lang, good in zip(langs, ok)],
                                names=names)
    length = signals.length_ratio(en, tgt, [lang if good else SOURCE_NLLB for lang, good in zip(langs, ok)])
    inflated = signals.short_input_inflated(en, tgt, scripts)
    numbers = [numbers_consistent(s, t, c) if c else None for s, t, c in zip(en, tgt, codes)]
    top, rank, prob = rank_language(tgt, [langid_label(c) if c else None for c in codes])

    if "answer_en" in frame.columns and "answer_tgt" in frame.columns:
        answers_en = frame["answer_en"].to_list()
        if "answer_translated" in frame.columns:
            # An answer that failed its round trip stays English on purpose (mBLIP's rule) and the
            # prompt says so: nothing to check.
            translated = frame["answer_translated"].to_list()
            answers_en = [a if kept is not False else None for a, kept in zip(answers_en, translated)]
        answer = _answer_issues(
            answers_en, frame["answer_tgt"].to_list(), scripts,
            [lang if good else None for lang, good in zip(langs, ok)], rules,
        )
    else:
        answer = [None] * frame.height

    def masked(values: list) -> list:
        return [v if good and not same else None for v, good, same in zip(values, ok, untranslated)]

    columns = {
        "sig_input_error": errors,
        "score_script_share": masked(share),
        "score_copy_overlap": masked(copy),
        "score_repeat_run": masked(run),
        "score_repeat_ngram": masked(ngram),
        "score_compression": masked(compression),
        "score_char_repeat": masked(stutter),
        "score_en_leak": masked(leak),
        "score_length_ratio": masked(length),
        "sig_short_inflated": masked(inflated),
        "sig_numbers_ok": masked(numbers),
        "sig_langid_top": masked(top),
        "score_langid_rank": masked(rank),
        "score_langid_prob": masked(prob),
        "sig_answer_issue": masked(answer),
    }
    return frame.with_columns([pl.Series(name, values, dtype=SIGNAL_SCHEMA[name]) for name, values in columns.items()])


MODEL_SIGNALS = (
    "backtranslation_en", "score_bt_chrf", "score_fwd_logprob", "score_fwd_margin", "score_sentence_margin",
    "score_bt_logprob", "score_dual_xent",
)
# The source margins: computed only with contrast sources (``contrasts`` > 0).
MARGIN_SIGNALS = ("score_fwd_margin", "score_sentence_margin")
# How the translation is checked against its source in the reverse direction:
# "score": the reverse model's log-prob of the English source given the translation (one teacher-forced
#          pass, no decoding) and the dual conditional cross-entropy with the forward score, plus the
#          source margin. The margin stays: absolute log-probs of a model shift between its training data
#          and new data (the shipped model keeps 97.6% of human multi30k train pairs at thresholds that
#          keep 86.9% on val), the margin, a difference of two log-probs, hardly moves;
# "decode": decode the back-translation and compare it with the source by chrF++ (what users inspect),
#           with the forward score and the source margin;
# "both": everything (benchmarks and calibration).
REVERSE_MODES = ("score", "decode", "both")
# Decoding stays the default: on multi30k val (`mblip bench filter`) it keeps more human pairs with the shipped
# model (97.3% vs 96.1% with four margin contrasts) and, without margins, its chrF++ separates unrelated outputs
# better than the reverse log-prob; users read the back-translations. At the NLLB-600M shape (`mblip bench filter
# --shape 600m`) the back-translation costs 1.01x a translation and the reverse score 0.34x; four margin
# contrasts add 1.9x (docs/performance.md).
DEFAULT_REVERSE = "decode"
REVERSE_SIGNALS = {
    "score": ("score_fwd_logprob", "score_fwd_margin", "score_sentence_margin", "score_bt_logprob", "score_dual_xent"),
    "decode": ("score_fwd_logprob", "score_fwd_margin", "score_sentence_margin", "backtranslation_en", "score_bt_chrf"),
    "both": MODEL_SIGNALS,
}


def dual_xent(fwd: float | None, bwd: float | None) -> float | None:
    """Dual conditional cross-entropy (Junczys-Dowmunt 2018, "Dual conditional cross-entropy filtering
    of noisy parallel corpora", WMT): with H_f = -log P(tgt | src) and H_b = -log P(src | tgt) per
    token, ``|H_f - H_b| + (H_f + H_b) / 2``. Low when both directions find the pair likely and agree;
    the paper scores exp(-this), here the nats are stored (lower = better). None when either is missing.
    """
    if fwd is None or bwd is None or fwd != fwd or bwd != bwd:
        return None
    h_f, h_b = -fwd, -bwd
    return abs(h_f - h_b) + 0.5 * (h_f + h_b)


def _source_margin(translator, srcs: list[str], tgts: list[str], own: list[float], langs: list[str],
                   stats=None, contrasts: int = CONTRAST_SOURCES) -> list[float | None]:
    """How much better the row's own source explains the translation than other English sources.

    log P(tgt | src) - max_k log P(tgt | src_k) (mean per token) separates what the source
    contributes from how fluent the target is on its own, in the spirit of conditional cross-mutual
    information (Fernandes et al. 2021): an unrelated or hallucinated output is no likelier under its
    own source than under someone else's, even for a weak model whose absolute scores are all low.
    Positive means the translation picks out its own source among ``contrasts`` + 1 (each contrast
    costs one forced-decoding pass of the translation, the filter's largest model cost). The
    contrast sources come from a fixed pool, picked by a hash of the row's source
    (``pipeline/filters/contrast.py``): a margin depends on its own row only, never on its chunk or batch.
    """
    pairs = [(i, other) for i, src in enumerate(srcs) for other in contrast_sources(src, contrasts)]
    scores = translator.score([o for _, o in pairs], [tgts[i] for i, _ in pairs], SOURCE_NLLB,
                              [langs[i] for i, _ in pairs], stats=stats) if pairs else []
    best: dict[int, float] = {}
    for (i, _), value in zip(pairs, scores):
        best[i] = max(best.get(i, value), value)
    return [own[i] - best[i] if i in best else None for i in range(len(srcs))]


def _sentence_margin(translator, srcs: list[str], tgts: list[str], langs: list[str],
                     stats=None, contrasts: int = CONTRAST_SOURCES) -> list[float | None]:
    """The lowest source margin among the sentences of each multi-sentence translation; None for one sentence.

    A run-on output (the right translation, then a sentence the source does not explain) keeps a good
    margin as a whole: the first sentence carries it. Scored on its own, each sentence must be explained
    by the row's source better than by the contrast sources (``_source_margin``); an appended unrelated
    sentence is not. Each sentence costs 1 + ``contrasts`` forced-decoding passes, only for
    outputs of two sentences or more (``signals.split_sentences``), so one-sentence captions cost nothing.
    """
    split = [signals.split_sentences(tgt) for tgt in tgts]
    parts = [(i, sentence) for i, sentences in enumerate(split) if len(sentences) > 1 for sentence in sentences]
    if not parts:
        return [None] * len(srcs)
    sub_srcs = [srcs[i] for i, _ in parts]
    sub_tgts = [sentence for _, sentence in parts]
    sub_langs = [langs[i] for i, _ in parts]
    own = translator.score(sub_srcs, sub_tgts, SOURCE_NLLB, sub_langs, stats=stats)
    margins = _source_margin(translator, sub_srcs, sub_tgts, own, sub_langs, stats=stats, contrasts=contrasts)
    lowest: dict[int, float] = {}
    for (i, _), margin in zip(parts, margins):
        if margin is not None:
            lowest[i] = min(lowest.get(i, margin), margin)
    return [lowest.get(i) for i in range(len(srcs))]


def compute_model_signals(
    frame: pl.DataFrame,
    translator,
    model_languages: frozenset[str] | None = None,
    only: pl.Series | None = None,
    reverse: str = DEFAULT_REVERSE,
    stats=None,
    missing_only: bool = False,
    contrasts: int = CONTRAST_SOURCES,
) -> pl.DataFrame:
    """The model signals of ``reverse`` (see ``REVERSE_MODES``: forward score, then source margin and
    decoded back-translation, or the reverse score), for rows without an input error whose language the model covers
    (``model_languages``: NLLB codes; None = every language) and, when given, where the boolean mask
    ``only`` is true.

    Identical texts are translated and scored once; scores go through the translator's dedup and
    persistent cache (``CachingTranslator.score``, counted in ``stats``). ``missing_only`` keeps the
    model signals a frame already has and computes only the absent ones (a re-decision of stored
    outputs under a new reverse mode); it never decodes when the decoded signals are already there.
    ``contrasts``: the other sources each margin is scored against (``pipeline/filters/contrast.py``);
    0 leaves both margins null (no scoring pass).
    """
    if reverse not in REVERSE_MODES:
        raise ValueError(f"filter.reverse {reverse!r} is not one of {', '.join(REVERSE_MODES)}")
    translator = as_caching(translator)
    wanted = REVERSE_SIGNALS[reverse]
    have = {c for c in MODEL_SIGNALS if missing_only and c in frame.columns and frame[c].is_not_null().any()}
    valid = frame["sig_input_error"].is_null() & (frame["lang_nllb"] != SOURCE_NLLB).fill_null(False)
    if model_languages is not None:
        valid = valid & frame["lang_nllb"].is_in(sorted(model_languages)).fill_null(False)
    if only is not None:
        valid = valid & only.fill_null(False)
    indexed = frame.with_row_index("_row")
    todo = indexed.filter(valid)
    keep_cols = [c for c in MODEL_SIGNALS if c in have]
    todo = todo.select("_row", "text_en", "text_tgt", "lang_nllb", *keep_cols)
    if todo.height:
        srcs, tgts, langs = todo["text_en"].to_list(), todo["text_tgt"].to_list(), todo["lang_nllb"].to_list()
        new: dict[str, list] = {}
        if "backtranslation_en" in wanted and "backtranslation_en" not in have:
            back = backtranslate_frame(todo.select("_row", "text_tgt", "lang_nllb"), translator)
            new["backtranslation_en"] = back["backtranslation_en"].to_list()
        if "score_bt_chrf" in wanted and "score_bt_chrf" not in have:
            hyps = new.get("backtranslation_en") or todo["backtranslation_en"].to_list()
            new["score_bt_chrf"] = signals.chrf_pp_batch(hyps, srcs)
        fwd = todo["score_fwd_logprob"].to_list() if "score_fwd_logprob" in have else None
        if fwd is None:
            fwd = new["score_fwd_logprob"] = translator.score(srcs, tgts, SOURCE_NLLB, langs, stats=stats)
        margins = contrasts > 0  # 0: no margin rule reads them (``FilterConfig.contrasts``), left null
        if margins and "score_fwd_margin" in wanted and "score_fwd_margin" not in have:
            new["score_fwd_margin"] = _source_margin(translator, srcs, tgts, fwd, langs, stats=stats,
                                                     contrasts=contrasts)
        if margins and "score_sentence_margin" in wanted and "score_sentence_margin" not in have:
            new["score_sentence_margin"] = _sentence_margin(translator, srcs, tgts, langs, stats=stats,
                                                            contrasts=contrasts)
        if "score_bt_logprob" in wanted and "score_bt_logprob" not in have:
            new["score_bt_logprob"] = translator.score(tgts, srcs, langs, SOURCE_NLLB, stats=stats)
        if "score_dual_xent" in wanted and "score_dual_xent" not in have:
            bwd = new.get("score_bt_logprob") or todo["score_bt_logprob"].to_list()
            new["score_dual_xent"] = [dual_xent(f, b) for f, b in zip(fwd, bwd)]
        todo = todo.with_columns([pl.Series(c, v, dtype=SIGNAL_SCHEMA[c]) for c, v in new.items()])
        todo = todo.with_columns([pl.lit(None, dtype=SIGNAL_SCHEMA[c]).alias(c) for c in MODEL_SIGNALS
                                  if c not in todo.columns])
    else:
        todo = pl.DataFrame(schema={"_row": pl.UInt32, **{c: SIGNAL_SCHEMA[c] for c in MODEL_SIGNALS}})
    todo = todo.select("_row", *[pl.col(c).cast(SIGNAL_SCHEMA[c]) for c in MODEL_SIGNALS])
    rest = indexed.drop([c for c in MODEL_SIGNALS if c in indexed.columns])
    return rest.join(todo, on="_row", how="left").sort("_row").drop("_row")


def apply_quality_filter(
    frame: pl.DataFrame,
    translator=None,
    rules: FilterRules | None = None,
    model_languages: frozenset[str] | None = None,
    score_rejected: bool = True,
    reverse: str = DEFAULT_REVERSE,
    stats=None,
    contrasts: int = CONTRAST_SOURCES,
) -> pl.DataFrame:
    """The filter stage: signals (model ones only with a ``translator``, and only for rows in
    ``model_languages`` when given: a model that does not know a language would reject all of it),
    then ``decide``. ``reverse`` picks the reverse check (``REVERSE_MODES``); ``stats`` counts the scoring passes;
    ``contrasts`` is the number of other sources of each source margin (0: no margin).

    ``score_rejected=False`` back-translates only rows that the heuristic rules keep: the decision is
    the same (any failing rule rejects), the model time is spent only where it can change it, and
    rows rejected by a heuristic have null model scores. The heuristics pick those rows as they apply to
    scored rows (``rules.as_scored``): a bound meant for rows no model checks must not keep the model away.
    """
    rules = rules or FilterRules()
    out = compute_heuristic_signals(frame, rules)
    if translator is not None:
        only = None if score_rejected else decide(out, as_scored(rules))["status"] == STATUS_KEPT
        out = compute_model_signals(
            out, translator, model_languages=model_languages, only=only,
            reverse=reverse, stats=stats, contrasts=contrasts,
        )
    else:
        out = out.with_columns(
            [pl.lit(None, dtype=SIGNAL_SCHEMA[c]).alias(c) for c in MODEL_SIGNALS if c not in out.columns]
        )
    return decide(out, rules)

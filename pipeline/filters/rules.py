"""The rule set that turns signal columns into keep/reject, and the decision itself.

Rules run in a fixed order and the first failing one names the reason. A null signal never fails a
rule (it means "not applicable": no numbers to check, language not covered by the identifier, no
translator for back-translation), so running without a translator simply skips the model rules.
Every threshold can be overridden per language (``per_language: {sw: {min_bt_chrf: 25}}``):
low-resource directions are noisier, and their thresholds may need to be looser.

Defaults were set on a tuning split of multi30k train (see ``evaluate.py``) and reported on val.
"""

from __future__ import annotations

import errno
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.filters.scripts import LANGUAGE_CHAR_RATIO
from pipeline.languages import get_language
from pipeline.schema import STATUS_KEPT, STATUS_REJECTED

# Reasons, in the order the rules are checked.
REASON_INPUT = "input"  # prefix: "input:empty_text_tgt", "input:unknown_lang", ...
REASON_SCRIPT = "wrong_script"
REASON_COPY = "copy_of_source"
REASON_LEAK = "english_leak"
REASON_REPETITION = "repetition"
REASON_STUTTER = "stutter"
REASON_INFLATED = "inflated_short_input"
REASON_TOO_SHORT = "too_short"
REASON_TOO_LONG = "too_long"
REASON_NUMBERS = "numbers_lost"
REASON_LANGUAGE = "wrong_language"
REASON_ANSWER = "answer"  # prefix: "answer:numbers_lost", ...
REASON_BT_CHRF = "low_bt_chrf"
REASON_FWD_SCORE = "low_fwd_score"
REASON_FWD_MARGIN = "source_ignored"
REASON_EXTRA_SENTENCE = "extra_sentence"
REASON_BT_SCORE = "low_bt_score"
REASON_DUAL_XENT = "high_dual_xent"


class Thresholds(BaseModel):
    """One language's thresholds. ``None`` turns a rule off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Share (0-1) of letters in the target's script. Lower keeps more mixed-script text (names).
    min_script_share: float | None = Field(0.8, ge=0, le=1)
    # Share (0-1) of the source's ordinary words found verbatim in the translation; higher lets more
    # near-copies through. Applies to sources of at least ``copy_min_src_words`` words (short ones like
    # "pizza" are legitimately the same in many languages).
    max_copy_overlap: float | None = Field(0.6, ge=0, le=1)
    copy_min_src_words: int = Field(3, ge=1)
    # Share (0-1) of the source's content words (function words, names, numbers and the words the
    # language borrows aside: signals.english_leak) found verbatim in the translation: English left in
    # it. Higher: more half-translated rows kept. Null (not applied) for sources of fewer than 3 content
    # words (signals.LEAK_MIN_WORDS). Human Multi30k train pairs: above 0.34 in 0.1-0.2% (de, fr, cs).
    max_en_leak: float | None = Field(0.34, ge=0, le=1)
    # Longest back-to-back run of a repeated unit ("a b a b a b" = 3); 2 tolerates "very very".
    max_repeat_run: int | None = Field(2, ge=1)
    # Share (0-1) of repeated word 3-grams (character 4-grams for unspaced scripts).
    max_repeat_ngram: float | None = Field(0.25, ge=0, le=1)
    # UTF-8 bytes / zlib bytes (Whisper uses 2.4 on 30 s segments; captions compress less).
    max_compression: float | None = Field(2.4, gt=0)
    # Most back-to-back copies of a 2-5 character unit inside or across words ("zezezezeigt" = 4): a
    # stuttering decoder. 2 keeps "Mississippi", "Couscous"; 3 of 87,000 human Multi30k train
    # translations (de, fr, cs) have 3 copies, both typos.
    max_char_repeat: int | None = Field(2, ge=1)
    # Target/source characters divided by the script's expected ratio (1 = typical).
    min_length_ratio: float | None = Field(0.6, ge=0)
    max_length_ratio: float | None = Field(2.0, gt=0)
    # The upper bound for rows no model scored (no `score_fwd_logprob`) in a language whose ratio was
    # measured (scripts.LANGUAGE_CHAR_RATIO: de, fr, cs): without the model's sentence margin nothing
    # else notices a run-on output (the translation plus an unrelated sentence). Multi30k train: 1.6
    # loses 8 of 3,000 human pairs and rejects 85% of run-ons (2.0: none lost, 53%). null = max_length_ratio.
    max_length_ratio_unscored: float | None = Field(1.6, gt=0)
    # Inputs of at most this many words must not become sentences (see signals.short_input_inflated).
    reject_inflated_short: bool = True
    # Every number of the source must survive.
    require_numbers: bool = True
    # Rank of the target language in the identifier's ranking must be at most this; texts with fewer
    # than ``langid_min_letters`` letters are not identified (too short to be reliable).
    langid_max_rank: int | None = Field(3, ge=1)
    langid_min_letters: int = Field(12, ge=0)
    # The rank for rows the model did not score (no `score_fwd_logprob`: `filter.backtranslate: false`, a
    # language outside the model's): with no model to vouch for the language, the identifier must rank it
    # this high; German labelled Luxembourgish ranks lb 2nd. Higher: more close-language confusions kept
    # (Slovak identified as Czech). null = `langid_max_rank` for every row.
    langid_max_rank_unscored: int | None = Field(1, ge=1)
    # Answers of VQA rows: the same script/number/inflation checks on ``answer_tgt``.
    check_answers: bool = True
    # chrF++ (0-100) of the back-translation against the English source (needs a translator).
    min_bt_chrf: float | None = Field(30.0, ge=0, le=100)
    # Forward-decoding mean log-prob per token (needs a translator); off until calibrated per model.
    min_fwd_logprob: float | None = Field(None, le=0)
    # Own-source log-prob minus that under other sources drawn from a fixed pool (needs a translator; see
    # quality._source_margin). Higher: more unrelated outputs caught, more good ones lost.
    min_fwd_margin: float | None = None
    # The same margin for each sentence of an output of two or more sentences, on its own; the lowest
    # counts (needs a translator; see quality._sentence_margin). Catches a right translation followed
    # by a sentence the source does not explain (run-on output). Off until calibrated per model.
    min_sentence_margin: float | None = None
    # Reverse forced-decoding mean log-prob per token of the English source given the translation
    # (``filter.reverse: score``; needs a translator). Higher: more meaning loss caught, more good lost.
    # Default: the shipped model's calibration (``calibrate.py``), lenient for a stronger model such as
    # NLLB-200, whose good pairs score higher; recalibrate with `python -m dev.filters.calibrate`.
    min_bt_logprob: float | None = Field(-3.5, le=0)
    # Dual conditional cross-entropy in nats per token (Junczys-Dowmunt 2018; see
    # quality.dual_xent). Lower: stricter.
    max_dual_xent: float | None = Field(None, ge=0)


class FilterRules(Thresholds):
    """Global thresholds plus per-language overrides (keys: project or NLLB codes)."""

    per_language: dict[str, dict] = Field(default_factory=dict)

    @field_validator("per_language")
    @classmethod
    def _valid_overrides(cls, value: dict[str, dict]) -> dict[str, dict]:
        known = set(Thresholds.model_fields)
        for code, override in value.items():
            get_language(code)  # raises with the list of valid codes
            unknown = set(override) - known
            if unknown:
                raise ValueError(f"per_language.{code}: unknown thresholds {sorted(unknown)}; valid: {sorted(known)}")
            try:  # each value as the global knob of that name takes it (type and range)
                Thresholds(**override)
            except ValidationError as e:
                raise ValueError(describe_validation_error(e, prefix=f"per_language.{code}.")) from None
        return value

    def margin_on(self) -> bool:
        """Whether a source-margin rule (``min_fwd_margin``, ``min_sentence_margin``) is on, globally or
        for any language: only then does a run pay the margin's scoring passes (``FilterConfig.contrasts``)."""
        knobs = ("min_fwd_margin", "min_sentence_margin")
        return any(getattr(self, k) is not None for k in knobs) or any(
            override.get(k) is not None for override in self.per_language.values() for k in knobs)

    def for_language(self, nllb_code: str) -> Thresholds:
        base = {k: getattr(self, k) for k in Thresholds.model_fields}
        for code, override in self.per_language.items():
            if get_language(code).nllb == nllb_code:
                base.update(override)
        return Thresholds(**base)


# Model thresholds calibrated for the small model shipped in the package (multi30k-trained, chrF++ ~48
# en->de): its scores are lower than NLLB-200's, so its thresholds differ from the defaults above
# (which are for NLLB-200). Written by `python -m dev.filters.calibrate --write` (package data,
# so a retrained model is recalibrated by rerunning that command); see ``calibrate.py``.
SHIPPED_THRESHOLDS_FILE = Path(__file__).with_name("shipped_model_filter.yaml")


def shipped_model_thresholds() -> dict:
    """The shipped model's calibrated model thresholds (``SHIPPED_THRESHOLDS_FILE``)."""
    import yaml

    data = yaml.safe_load(SHIPPED_THRESHOLDS_FILE.read_text()) or {}
    unknown = set(data) - set(Thresholds.model_fields)
    if unknown:
        raise ValueError(f"{SHIPPED_THRESHOLDS_FILE}: unknown thresholds {sorted(unknown)}")
    return data


def describe_validation_error(error: ValidationError, prefix: str = "") -> str:
    """Every failing knob on one line: ``min_bt_chrf: Input should be a valid number; ...``."""
    return "; ".join(f"{prefix}{'.'.join(map(str, err['loc'])) or '(top level)'}: {err['msg']}"
                     for err in error.errors())


# Knobs that only bind rows no model scored: a stricter stand-in for the model's checks.
UNSCORED_KNOBS = ("langid_max_rank_unscored", "max_length_ratio_unscored")


def as_scored(rules: FilterRules) -> FilterRules:
    """``rules`` as they apply to a row the model scores: the ``UNSCORED_KNOBS`` off, globally and per
    language. What the heuristics decide under these is what the model still has to check."""
    per_language = {code: {k: v for k, v in override.items() if k not in UNSCORED_KNOBS}
                    for code, override in rules.per_language.items()}
    return rules.model_copy(update={**dict.fromkeys(UNSCORED_KNOBS), "per_language": per_language})


def load_rules(path: str | Path | None, shipped_model: bool = False) -> FilterRules:
    """Rules from a YAML file; ``None``: the defaults, with the shipped model's model thresholds when
    ``shipped_model``. Errors are one line naming the file and the knob (``per_language.de.min_bt_chrf``)."""
    import yaml

    if path is None:
        return FilterRules(**shipped_model_thresholds()) if shipped_model else FilterRules()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such filter rules file", str(path))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from e
    try:
        return FilterRules.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"{path}: invalid filter rules: {describe_validation_error(e)}") from e


def _per_row(frame: pl.DataFrame, rules: FilterRules, knob: str) -> pl.Expr:
    """The threshold ``knob`` for each row's ``lang_nllb`` (global value unless overridden)."""
    default = getattr(rules, knob)
    overrides = {}
    for code in rules.per_language:
        nllb = get_language(code).nllb
        overrides[nllb] = getattr(rules.for_language(nllb), knob)
    if not overrides:
        return pl.lit(default)
    dtype = pl.Float64 if not isinstance(default, bool) else pl.Boolean
    return pl.col("lang_nllb").replace_strict(overrides, default=default, return_dtype=dtype)


def _col(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, dtype=dtype)


_DECISION_INPUTS: dict[str, pl.DataType] = {
    "text_en": pl.String(), "text_tgt": pl.String(), "sig_input_error": pl.String(),
    "score_script_share": pl.Float64(), "score_copy_overlap": pl.Float64(), "score_repeat_run": pl.Int64(),
    "score_repeat_ngram": pl.Float64(), "score_compression": pl.Float64(), "score_length_ratio": pl.Float64(),
    "score_char_repeat": pl.Int64(), "score_en_leak": pl.Float64(), "score_sentence_margin": pl.Float64(),
    "sig_short_inflated": pl.Boolean(), "sig_numbers_ok": pl.Boolean(), "score_langid_rank": pl.Int64(),
    "sig_answer_issue": pl.String(), "score_bt_chrf": pl.Float64(), "score_fwd_logprob": pl.Float64(),
    "score_fwd_margin": pl.Float64(), "score_bt_logprob": pl.Float64(), "score_dual_xent": pl.Float64(),
}


LENGTH_KNOBS = ("min_length_ratio", "max_length_ratio", "max_length_ratio_unscored")


def rule_scope(knob: str, copy_min_src_words: int | pl.Expr = 3) -> pl.Expr | None:
    """The rows whose signal the rule of ``knob`` judges at all (None: every row with a value), as ``decide``
    gates it: the length ratio only for inputs long enough to have one (``sig_short_inflated`` null: short
    inputs get the inflation check instead), the copy overlap only for sources of at least
    ``copy_min_src_words`` words. Needs the ``sig_short_inflated`` and ``text_en`` columns."""
    if knob in LENGTH_KNOBS:
        return pl.col("sig_short_inflated").is_null()
    if knob == "max_copy_overlap":
        return pl.col("text_en").str.count_matches(r"\w+") >= copy_min_src_words
    return None


def decide(frame: pl.DataFrame, rules: FilterRules) -> pl.DataFrame:
    """Add ``status`` ("kept"/"rejected") and ``reject_reason`` (first failing rule, null when kept).

    Rows already rejected upstream keep their status and reason.
    """
    # Signals that were not computed (no translator, no answers) are null: their rules do not apply.
    frame = frame.with_columns(
        [pl.lit(None, dtype=dtype).alias(name) for name, dtype in _DECISION_INPUTS.items() if name not in frame.columns]
    )
    t = lambda knob: _per_row(frame, rules, knob)  # noqa: E731
    on = lambda knob: t(knob).is_not_null()  # noqa: E731

    letters = _col(frame, "text_tgt", pl.String).str.count_matches(r"\p{L}").fill_null(0)
    n_letters_ok = letters >= t("langid_min_letters")
    unscored = _col(frame, "score_fwd_logprob", pl.Float64).is_null() & on("langid_max_rank_unscored")
    langid_limit = pl.when(unscored).then(t("langid_max_rank_unscored")).otherwise(t("langid_max_rank"))
    is_long = rule_scope("max_length_ratio")
    measured = pl.col("lang_nllb").is_in(sorted(LANGUAGE_CHAR_RATIO)).fill_null(False)
    length_limit = (
        pl.when(_col(frame, "score_fwd_logprob", pl.Float64).is_null() & measured & on("max_length_ratio_unscored"))
        .then(t("max_length_ratio_unscored"))
        .otherwise(t("max_length_ratio"))
    )
    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (
            _col(frame, "sig_input_error", pl.String).is_not_null(),
            pl.lit(REASON_INPUT + ":") + pl.col("sig_input_error"),
        ),
        (on("min_script_share") & (pl.col("score_script_share") < t("min_script_share")), pl.lit(REASON_SCRIPT)),
        (
            on("max_copy_overlap")
            & rule_scope("max_copy_overlap", t("copy_min_src_words"))
            & (pl.col("score_copy_overlap") > t("max_copy_overlap")),
            pl.lit(REASON_COPY),
        ),
        (on("max_en_leak") & (pl.col("score_en_leak") > t("max_en_leak")), pl.lit(REASON_LEAK)),
        (
            (on("max_repeat_run") & (pl.col("score_repeat_run") > t("max_repeat_run")))
            | (on("max_repeat_ngram") & (pl.col("score_repeat_ngram") > t("max_repeat_ngram")))
            | (on("max_compression") & (pl.col("score_compression") > t("max_compression"))),
            pl.lit(REASON_REPETITION),
        ),
        (on("max_char_repeat") & (pl.col("score_char_repeat") > t("max_char_repeat")), pl.lit(REASON_STUTTER)),
        # Very short inputs ("yes", "2", "red car") get the hard bound instead of the ratio: a ratio of
        # 3-letter words says nothing.
        (t("reject_inflated_short") & pl.col("sig_short_inflated"), pl.lit(REASON_INFLATED)),
        (
            on("min_length_ratio") & is_long & (pl.col("score_length_ratio") < t("min_length_ratio")),
            pl.lit(REASON_TOO_SHORT),
        ),
        (
            length_limit.is_not_null() & is_long & (pl.col("score_length_ratio") > length_limit),
            pl.lit(REASON_TOO_LONG),
        ),
        (t("require_numbers") & pl.col("sig_numbers_ok").not_(), pl.lit(REASON_NUMBERS)),
        (
            on("langid_max_rank") & n_letters_ok & (pl.col("score_langid_rank") > langid_limit),
            pl.lit(REASON_LANGUAGE),
        ),
        (
            t("check_answers") & pl.col("sig_answer_issue").is_not_null(),
            pl.lit(REASON_ANSWER + ":") + pl.col("sig_answer_issue"),
        ),
        (on("min_bt_chrf") & (pl.col("score_bt_chrf") < t("min_bt_chrf")), pl.lit(REASON_BT_CHRF)),
        (on("min_fwd_logprob") & (pl.col("score_fwd_logprob") < t("min_fwd_logprob")), pl.lit(REASON_FWD_SCORE)),
        (on("min_fwd_margin") & (pl.col("score_fwd_margin") < t("min_fwd_margin")), pl.lit(REASON_FWD_MARGIN)),
        (
            on("min_sentence_margin") & (pl.col("score_sentence_margin") < t("min_sentence_margin")),
            pl.lit(REASON_EXTRA_SENTENCE),
        ),
        (on("min_bt_logprob") & (pl.col("score_bt_logprob") < t("min_bt_logprob")), pl.lit(REASON_BT_SCORE)),
        (on("max_dual_xent") & (pl.col("score_dual_xent") > t("max_dual_xent")), pl.lit(REASON_DUAL_XENT)),
    ]
    reason = pl.lit(None, dtype=pl.String)
    for failed, name in reversed(checks):
        reason = pl.when(failed.fill_null(False)).then(name).otherwise(reason)

    prior_status = _col(frame, "status", pl.String)
    prior_reason = _col(frame, "reject_reason", pl.String)
    already = (prior_status == STATUS_REJECTED).fill_null(False)
    final_reason = pl.when(already).then(prior_reason).otherwise(reason)
    return frame.with_columns(final_reason.alias("reject_reason")).with_columns(
        pl.when(already | pl.col("reject_reason").is_not_null())
        .then(pl.lit(STATUS_REJECTED))
        .otherwise(pl.lit(STATUS_KEPT))
        .alias("status")
    )

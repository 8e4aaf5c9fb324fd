"""Per-language thresholds from a finished output's own scores (``mblip calibrate OUT``).

NLLB-200's quality differs by an order of magnitude across its languages, and most of them have no human
reference to tune a threshold on. Every row of an output, kept or rejected, stores every filter signal
(``score_*`` columns of ``data/{lang}/`` and ``rejects/{lang}/``), so each language's own distribution can
place its cuts. This follows OpusFilter's ``opusfilter-autogen --method percentiles`` (Aulamo et al.): assume
a share of the data is noisy (``--noisy-percentile``, 0.001 there) and set each filter's threshold on its
own at that percentile of the scores. Here, per language and per signal:

* a knob ``min_X`` on column ``score_X`` (higher is better; a row is rejected below the cut) is cut at the
  ``noisy_share`` quantile of the language's finite values; a knob ``max_X`` (lower is better) at the
  ``1 - noisy_share`` quantile. So each rule alone rejects about ``noisy_share`` of a language's scored rows.
  Any ``min_``/``max_`` knob of ``rules.Thresholds`` with a ``score_`` column is a signal: new ones need
  no change here. Integer knobs (``max_repeat_run``) are rounded towards the same decisions;
* ``bound="global"`` (default; OpusFilter has no such bound): never laxer than the rules' global value, so
  a language the model translates badly keeps the global cut instead of one that would keep its noise;
  ``bound="none"``: the percentiles as they are;
* a language with fewer than ``min_rows`` values of a signal keeps the global value (a percentile of a
  few rows says little);
* English rows and rows whose source fixed their language are not translations and are left out.

Quantiles are polars' ``linear`` interpolation (numpy's default ``percentile``), as in ``stats.json``.
"""

from __future__ import annotations

import errno
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.calibrate_defaults import CALIBRATION_BOUNDS, DEFAULT_BOUND, DEFAULT_MIN_ROWS, DEFAULT_NOISY_SHARE
from pipeline.filters.rules import UNSCORED_KNOBS, FilterRules, Thresholds, rule_scope
from pipeline.io import read_json, write_text_atomic
from pipeline.languages import SOURCE_LANGUAGE, get_language
from pipeline.output_dir import MANIFEST
from pipeline.outputs.shards import SPLIT_KEPT, SPLIT_REJECTED

SOURCE_PERCENTILE = "percentile"  # the language's own quantile (rounded for an integer knob)
SOURCE_GLOBAL_BOUND = "global bound"  # the quantile was laxer than the global value, which stays
SOURCE_TOO_FEW = "too few rows"  # fewer than min_rows values: the global value stays


@dataclass(frozen=True)
class Knob:
    """A threshold on a stored signal: ``min_X`` / ``max_X`` of ``Thresholds`` on column ``score_X``."""

    name: str
    column: str
    higher_is_better: bool  # min_: rows below the cut are rejected; max_: rows above it
    integer: bool  # the knob takes whole numbers (the signal is a count)
    low: float | None = None  # the knob's own range (``ge`` / ``le`` of its field): proposals are clipped to it
    high: float | None = None

    def clip(self, value: float) -> float:
        value = value if self.low is None else max(value, self.low)
        return value if self.high is None else min(value, self.high)

    def rejects(self, value: pl.Expr, cut: float | pl.Expr) -> pl.Expr:
        """Whether ``decide`` rejects ``value`` at ``cut`` (``rules.decide``: ``<`` for min_, ``>`` for max_)."""
        return value < cut if self.higher_is_better else value > cut


def threshold_knobs() -> list[Knob]:
    """Every numeric ``min_``/``max_`` knob of ``Thresholds``, in declaration order, but those that bind only
    rows no model scored (``rules.UNSCORED_KNOBS``: a stricter stand-in on a signal another knob already
    cuts)."""
    knobs = []
    for name, info in Thresholds.model_fields.items():
        if not name.startswith(("min_", "max_")) or name in UNSCORED_KNOBS:
            continue
        types = set(typing.get_args(info.annotation) or (info.annotation,)) - {type(None)}
        if types and types <= {int, float}:
            low = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
            high = next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)
            knobs.append(Knob(name, f"score_{name[4:]}", name.startswith("min_"), types == {int}, low, high))
    return knobs


@dataclass(frozen=True)
class Cut:
    """One language's proposal for one knob."""

    lang: str
    knob: str
    rows: int  # finite stored values of the signal in this language (kept and rejected rows)
    percentile: float | None  # their quantile (None: too few rows)
    value: float | None  # the proposed threshold (None: the global value stays)
    source: str  # SOURCE_PERCENTILE, SOURCE_GLOBAL_BOUND or SOURCE_TOO_FEW
    rejected: int  # of those rows, how many the threshold in effect rejects (this rule alone)


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate_output`` proposes: the complete rules, every cut, and how they were made."""

    rules: FilterRules
    cuts: list[Cut]
    settings: dict  # output, noisy_share, min_rows, bound, knobs, rows
    skipped: dict[str, str] = field(default_factory=dict)  # knob -> why it was not calibrated


def output_rules(manifest: dict, path: Path) -> FilterRules:
    """The filter rules that decided an output (``settings.filter`` of its manifest)."""
    settings = (manifest.get("settings") or {}).get("filter")
    if not settings:
        raise ValueError(f"{path}: no filter settings recorded (settings.filter); regenerate the output first")
    return FilterRules.model_validate({k: v for k, v in settings.items() if k in FilterRules.model_fields})


def stored_scores(out_dir: str | Path) -> tuple[pl.LazyFrame, dict]:
    """The translated rows' ``lang`` and numeric ``score_*`` columns of every kept and rejected shard of a
    finished output, with ``text_en`` and ``sig_short_inflated`` (where a rule applies: ``rules.rule_scope``;
    null in outputs that predate the signal), and its manifest. Errors name the folder."""
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such output folder", str(out))
    manifest = read_json(out / MANIFEST)
    if not isinstance(manifest, dict):
        raise ValueError(f"{out}: no readable {MANIFEST}: calibrate reads a finished output "
                         f"(mblip generate CONFIG --out {out})")
    files = [out / f["path"] for f in manifest.get("files", []) if f.get("split") in (SPLIT_KEPT, SPLIT_REJECTED)]
    frames = []
    for path in files:
        frame = pl.scan_parquet(path)
        schema = frame.collect_schema()
        columns = ["lang", "text_en", *[c for c, t in schema.items() if c.startswith("score_") and t.is_numeric()]]
        translated = pl.col("lang") != SOURCE_LANGUAGE
        if "preset_lang" in schema:
            translated &= pl.col("preset_lang").is_null()
        short = pl.col("sig_short_inflated") if "sig_short_inflated" in schema else pl.lit(None, dtype=pl.Boolean)
        frames.append(frame.filter(translated).select(*columns, short.alias("sig_short_inflated")))
    if not frames:
        return pl.LazyFrame(schema={"lang": pl.String}), manifest
    return pl.concat(frames, how="diagonal_relaxed"), manifest


def _proposal(knob: Knob, quantile: float, global_value: float | None, bound: str) -> tuple[float, str]:
    value = quantile
    if knob.integer:  # x < 2.4 is x < 3 for a count, x > 2.4 is x > 2: the same rows, a valid knob value
        value = math.ceil(quantile) if knob.higher_is_better else math.floor(quantile)
    value = knob.clip(value)
    if bound == "global" and global_value is not None:
        bounded = max(value, global_value) if knob.higher_is_better else min(value, global_value)
        if bounded != value:
            return bounded, SOURCE_GLOBAL_BOUND
    return value, SOURCE_PERCENTILE


def calibrate_knob(scores: pl.LazyFrame, knob: Knob, global_value: float | None, noisy_share: float,
                   min_rows: int, bound: str, scope: pl.Expr | None = None) -> list[Cut]:
    """Every language's cut for ``knob`` from its finite stored values (``scores``: ``lang`` + the column)
    on the rows its rule judges (``scope``, ``rules.rule_scope``; None: all)."""
    value = pl.col(knob.column).cast(pl.Float64)
    scores = scores if scope is None else scores.filter(scope)
    rows = scores.select("lang", value.alias("v")).filter(pl.col("v").is_not_null() & pl.col("v").is_finite())
    q = noisy_share if knob.higher_is_better else 1.0 - noisy_share
    per_lang = rows.group_by("lang").agg(pl.len().alias("rows"), pl.col("v").quantile(q, "linear").alias("q"))
    cuts = []
    for r in per_lang.sort("lang").collect().iter_rows(named=True):
        if r["rows"] < min_rows:
            cuts.append(Cut(r["lang"], knob.name, r["rows"], None, None, SOURCE_TOO_FEW, 0))
        else:
            proposed, source = _proposal(knob, r["q"], global_value, bound)
            cuts.append(Cut(r["lang"], knob.name, r["rows"], r["q"], proposed, source, 0))
    in_effect = pl.LazyFrame({"lang": [c.lang for c in cuts],
                              "cut": [c.value if c.value is not None else global_value for c in cuts]},
                             schema={"lang": pl.String, "cut": pl.Float64})
    counted = rows.join(in_effect, on="lang").filter(knob.rejects(pl.col("v"), pl.col("cut")))
    rejected = dict(counted.group_by("lang").len().collect().iter_rows())
    return [Cut(c.lang, c.knob, c.rows, c.percentile, c.value, c.source, rejected.get(c.lang, 0)) for c in cuts]


def _merged_overrides(rules: FilterRules, cuts: list[Cut]) -> dict[str, dict]:
    """The rules' per-language overrides (under project codes) with the proposals: a value equal to the
    global one is no override; languages and knobs without a proposal keep what they had."""
    merged: dict[str, dict] = {}
    for code, override in rules.per_language.items():
        merged.setdefault(get_language(code).code, {}).update(override)
    for cut in cuts:
        if cut.value is None:
            continue
        entry = merged.setdefault(cut.lang, {})
        if cut.value == getattr(rules, cut.knob):
            entry.pop(cut.knob, None)
        else:
            entry[cut.knob] = cut.value
    return {code: dict(sorted(merged[code].items())) for code in sorted(merged) if merged[code]}


def calibrate_output(out_dir: str | Path, noisy_share: float = DEFAULT_NOISY_SHARE,
                     min_rows: int = DEFAULT_MIN_ROWS, bound: str = DEFAULT_BOUND,
                     knobs: list[str] | None = None) -> Calibration:
    """Propose per-language thresholds for the output in ``out_dir`` from its stored scores (module doc).

    ``knobs``: the knobs to calibrate (default: every ``min_``/``max_`` knob whose rule is on in the output's
    rules and whose signal was stored); a knob that is off globally may be named, and is then set per
    language only. The global values stay those of the output's rules."""
    if not 0 < noisy_share < 0.5:
        raise ValueError(f"noisy share {noisy_share:g}: must be between 0 and 0.5 (the share of each language's "
                         "rows a rule alone rejects)")
    if min_rows < 1:
        raise ValueError(f"min rows {min_rows}: must be at least 1")
    if bound not in CALIBRATION_BOUNDS:
        raise ValueError(f"bound {bound!r}: one of {', '.join(CALIBRATION_BOUNDS)}")
    scores, manifest = stored_scores(out_dir)
    rules = output_rules(manifest, Path(out_dir) / MANIFEST)
    available = {k.name: k for k in threshold_knobs()}
    unknown = sorted(set(knobs or ()) - set(available))
    if unknown:
        raise ValueError(f"knobs {', '.join(unknown)}: not thresholds on a stored signal; "
                         f"valid: {', '.join(available)}")
    columns = set(scores.collect_schema())
    chosen = [available[name] for name in knobs] if knobs else \
        [k for k in available.values() if getattr(rules, k.name) is not None]
    cuts: list[Cut] = []
    skipped: dict[str, str] = {}
    for knob in chosen:
        knob_cuts = calibrate_knob(scores, knob, getattr(rules, knob.name), noisy_share, min_rows, bound,
                                   rule_scope(knob.name, rules.copy_min_src_words)) if knob.column in columns else []
        if not knob_cuts:
            skipped[knob.name] = f"no stored values of {knob.column}"
        cuts += knob_cuts
    proposed = FilterRules.model_validate({**rules.model_dump(exclude={"per_language"}),
                                           "per_language": _merged_overrides(rules, cuts)})
    n_rows = scores.select(pl.len()).collect().item()
    settings = {"output": str(Path(out_dir)), "noisy_share": noisy_share, "min_rows": min_rows, "bound": bound,
                "knobs": [k.name for k in chosen], "rows": n_rows}
    return Calibration(proposed, cuts, settings, skipped)


def rules_yaml(calibration: Calibration) -> str:
    """The proposed rules as a filter rules file (``rules.load_rules`` reads it), with how they were made."""
    import yaml

    s = calibration.settings
    header = [
        f"# Filter rules proposed by `mblip calibrate` from the stored scores of {s['output']}",
        f"# ({s['rows']:,} translated rows): per language, each signal cut at its {s['noisy_share']:g} quantile "
        f"(min_ knobs) or {1 - s['noisy_share']:g} quantile (max_ knobs)"
        + (", never laxer than the global value" if s["bound"] == "global" else "") + ";",
        f"# languages with fewer than {s['min_rows']} values of a signal keep the global value. Calibrated: "
        f"{', '.join(s['knobs']) or 'nothing'}.",
        f"# Apply from the stored scores (nothing is translated): mblip regenerate {s['output']} --rules THIS_FILE",
    ]
    body = yaml.safe_dump(calibration.rules.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body


def write_rules(calibration: Calibration, path: str | Path) -> Path:
    """Write the proposed rules to ``path`` (atomically)."""
    return write_text_atomic(rules_yaml(calibration), path)


def format_calibration(calibration: Calibration) -> str:
    """A table of every cut: language, knob, rows, quantile, proposal, global value, rows rejected, source."""
    rules = calibration.rules
    lines = [f"{'lang':<5} {'knob':<18} {'rows':>8} {'quantile':>10} {'cut':>10} {'global':>10} {'rejected':>9}  why"]

    def num(x) -> str:
        return "-" if x is None else f"{x:.4g}"

    for c in sorted(calibration.cuts, key=lambda c: (c.lang, c.knob)):
        share = f"{100 * c.rejected / c.rows:.1f}%" if c.rows else "-"
        lines.append(f"{c.lang:<5} {c.knob:<18} {c.rows:>8} {num(c.percentile):>10} {num(c.value):>10} "
                     f"{num(getattr(rules, c.knob)):>10} {share:>9}  {c.source}")
    lines += [f"{name}: not calibrated ({why})" for name, why in calibration.skipped.items()]
    return "\n".join(lines)

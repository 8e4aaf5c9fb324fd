"""``stats.json``: every counter the card shows, from the rows, the quarantine and the chunk sidecars.

``compute_stats`` checks the row invariant (input records = kept + rejected + quarantined per source)
and aggregates per source, language, task and reject reason; ``score_summaries`` gives the quantiles
the plots draw; ``sum_sidecars`` adds up the per-chunk engine counters; ``summarise_files`` the shards.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from pipeline.io import read_json
from pipeline.languages import get_language
from pipeline.schema import SCHEMA_VERSION, STATUS_KEPT, STATUS_REJECTED
from pipeline.translate import TranslationStats, stats_path

STATS = "stats.json"
# Quantiles kept per score column and language (enough for box plots; see pipeline/card/plots.py).
SCORE_QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
# Bins of the per-language score histograms (the card's per-language thresholds, pipeline/card/thresholds.py).
HISTOGRAM_BINS = 25


class InvariantError(RuntimeError):
    """Input records != kept + rejected + quarantined for some source."""



def compute_stats(rows: pl.LazyFrame, bad: pl.LazyFrame | pl.DataFrame, ingest_counts: dict[str, dict[str, int]],
                  fan_out: int, target_shares: dict[str, float] | None = None) -> dict:
    """Every counter the card shows: per source, language, task and reject reason, plus score summaries.

    ``target_shares``: the run's assignment weights per language (default: mC4 shares renormalised
    over the languages present)."""
    bad = bad.lazy()
    kept, rejected = pl.col("status") == STATUS_KEPT, pl.col("status") == STATUS_REJECTED
    per_source = rows.group_by("source").agg(kept.sum().alias("kept"), rejected.sum().alias("rejected")).collect()
    out_counts = {r["source"]: r for r in per_source.to_dicts()}
    q_by_source = {r["source"]: r["len"] for r in bad.group_by("source").len().collect().to_dicts()}
    sources = {}
    for source, counts in sorted(ingest_counts.items()):
        n_kept = int(out_counts.get(source, {}).get("kept", 0))
        n_rejected = int(out_counts.get(source, {}).get("rejected", 0))
        quarantined = int(q_by_source.get(source, 0))
        records = counts["rows"] + counts["quarantined"]
        if quarantined != counts["quarantined"] or n_kept + n_rejected != counts["rows"] * fan_out:
            raise InvariantError(
                f"source {source}: {records} input records but kept {n_kept} + rejected {n_rejected} "
                f"(fan-out {fan_out}) + quarantined {quarantined} do not add up"
            )
        sources[source] = {"records": records, "rows": counts["rows"], "kept": n_kept, "rejected": n_rejected,
                           "quarantined": quarantined,
                           **{k: v for k, v in counts.items() if k not in ("rows", "quarantined")}}

    schema = rows.collect_schema()
    score_cols = [c for c, t in schema.items() if c.startswith("score_") and t.is_numeric()]
    # Rows whose source fixed the language (``preset_lang``) were not assigned by the run: the shares
    # compared with the assignment's targets count only the rows the run assigned.
    by_run = pl.col("preset_lang").is_null() if "preset_lang" in schema else pl.lit(True)
    per_lang = rows.group_by("lang").agg(
        pl.len().alias("assigned"), kept.sum().alias("kept"), rejected.sum().alias("rejected"),
        by_run.sum().alias("by_run"),
    ).sort("lang").collect()
    scores = score_summaries(rows, score_cols)
    histograms = score_histograms(rows, score_cols)
    reasons = rows.filter(rejected).group_by(["lang", "reject_reason"]).len().sort(["lang", "reject_reason"]).collect()
    reasons_by_lang: dict[str, dict[str, int]] = {}
    for r in reasons.to_dicts():
        reasons_by_lang.setdefault(r["lang"], {})[r["reject_reason"] or "unknown"] = r["len"]

    total_by_run = int(per_lang["by_run"].sum()) if per_lang.height else 0
    run_langs = [get_language(code) for code in per_lang["lang"].to_list()]
    mc4_total = sum(lang.mc4_share_pct for lang in run_langs) or 1.0
    languages = {}
    for r, lang in zip(per_lang.to_dicts(), run_langs):
        languages[lang.code] = {
            "name": lang.name, "nllb": lang.nllb,
            "assigned": r["assigned"], "kept": r["kept"], "rejected": r["rejected"],
            "keep_rate": r["kept"] / r["assigned"] if r["assigned"] else 0.0,
            "assigned_share": r["by_run"] / total_by_run if total_by_run else 0.0,
            "preset": r["assigned"] - r["by_run"],  # rows in this language because their source fixed it
            "mc4_target_share": (target_shares or {}).get(lang.code, lang.mc4_share_pct / mc4_total),
            "reject_reasons": reasons_by_lang.get(lang.code, {}),
            "mean_scores": {c: scores.get(c, {}).get(lang.code, {}).get("mean") for c in score_cols},
            # kept for readers of the first stats format (pipeline/summary.py)
            "mean_bt_chrf": scores.get("score_bt_chrf", {}).get(lang.code, {}).get("mean"),
        }
    per_task = rows.group_by("task").agg(pl.len().alias("assigned"), kept.sum().alias("kept"),
                                         rejected.sum().alias("rejected")).sort("task").collect()
    per_task_lang = rows.group_by(["task", "lang"]).agg(kept.sum().alias("kept"), rejected.sum().alias("rejected"))
    task_languages: dict[str, dict[str, dict]] = {}
    for r in per_task_lang.sort(["task", "lang"]).collect().to_dicts():
        task_languages.setdefault(r["task"], {})[r["lang"]] = {"kept": r["kept"], "rejected": r["rejected"]}
    mix_rows = rows.filter(pl.col("reject_reason").is_in(["mix_share", "mix_cap"])).group_by(["task", "reject_reason"])
    mix_reasons: dict[str, dict[str, int]] = {}
    for r in mix_rows.len().sort(["task", "reject_reason"]).collect().to_dicts():
        mix_reasons.setdefault(r["task"], {})[r["reject_reason"]] = r["len"]
    quarantine_reasons = bad.group_by(["source", "field", "reason"]).len().sort(["source", "field", "reason"]).collect()
    return {
        "schema_version": SCHEMA_VERSION,
        "totals": {
            "records": sum(s["records"] for s in sources.values()),
            "kept": sum(s["kept"] for s in sources.values()),
            "rejected": sum(s["rejected"] for s in sources.values()),
            "quarantined": sum(s["quarantined"] for s in sources.values()),
        },
        "sources": sources,
        "tasks": {r["task"]: {k: v for k, v in r.items() if k != "task"} for r in per_task.to_dicts()},
        "task_languages": task_languages,
        "mix_reasons": mix_reasons,
        "languages": languages,
        "reject_reasons": [{"lang": r["lang"], "reason": r["reject_reason"], "rows": r["len"]}
                           for r in reasons.to_dicts()],
        "quarantine_reasons": [
            {"source": r["source"], "field": r["field"], "reason": r["reason"], "rows": r["len"]}
            for r in quarantine_reasons.to_dicts()
        ],
        "scores": scores,
        "score_histograms": histograms,
    }


def score_summaries(rows: pl.LazyFrame, score_cols: list[str]) -> dict[str, dict[str, dict]]:
    """Per score column and language: count, mean, min, quantiles, max (nulls = not applicable, skipped).

    Aggregated in polars so the plots never need the rows themselves; one column at a time, because
    exact quantiles hold the column's values: memory is one score column (and the language), not every one.
    The mean is summed exactly (``math.fsum``): a float sum in polars depends on how the rows are split
    into chunks and threads, and the same rows must give the same stats.json, byte for byte.
    """
    out: dict[str, dict[str, dict]] = {}
    keys = ("count", "mean", "min", *SCORE_QUANTILES, "max")
    for c in score_cols:
        col = pl.col(c).cast(pl.Float64)
        aggs = [col.count().alias("count"), col.min().alias("min"), col.max().alias("max"),
                col.drop_nulls().alias("values")]
        aggs += [col.quantile(q, interpolation="linear").alias(name) for name, q in SCORE_QUANTILES.items()]
        for r in rows.select("lang", c).group_by("lang").agg(aggs).sort("lang").collect().to_dicts():
            if r["count"]:
                r["mean"] = _exact_sum(r["values"]) / r["count"]
                out.setdefault(c, {})[r["lang"]] = {k: r[k] for k in keys}
    return out


def score_histograms(rows: pl.LazyFrame, score_cols: list[str], bins: int = HISTOGRAM_BINS) -> dict[str, dict]:
    """Per score column: ``edges`` (``bins`` equal bins from the smallest to the largest finite value of every
    language, so languages compare bin by bin) and per language the ``counts`` of its finite values (the
    last bin holds the largest value). Rows of every status; nulls and non-finite values are left out."""
    out: dict[str, dict] = {}
    if not score_cols:
        return out
    # every column's finite range in one pass over the rows; then one binning pass per column
    finite_values = {c: pl.col(c).cast(pl.Float64).filter(pl.col(c).cast(pl.Float64).is_finite()) for c in score_cols}
    ranges = rows.select([e for k, v in enumerate(finite_values.values())
                          for e in (v.min().alias(f"lo{k}"), v.max().alias(f"hi{k}"))]).collect().row(0)
    for k, c in enumerate(score_cols):
        lo, hi = ranges[2 * k], ranges[2 * k + 1]
        if lo is None:
            continue
        col = pl.col(c).cast(pl.Float64)
        finite = rows.select("lang", col.alias("v")).filter(pl.col("v").is_not_null() & pl.col("v").is_finite())
        width = (hi - lo) / bins if hi > lo else 1.0 / bins
        index = ((pl.col("v") - lo) / width).floor().clip(0, bins - 1).cast(pl.Int64).alias("bin")
        counts: dict[str, list[int]] = {}
        for lang, b, n in finite.group_by("lang", index).len().sort("lang", "bin").collect().iter_rows():
            counts.setdefault(lang, [0] * bins)[b] = n
        out[c] = {"edges": [lo + i * width for i in range(bins + 1)], "languages": counts}
    return out


def _exact_sum(values: list[float]) -> float:
    try:
        return math.fsum(values)
    except ValueError:  # inf + -inf: what a plain sum gives
        return float("nan")


def sum_sidecars(processed: Iterable[str | Path]) -> dict:
    """Run totals of the per-chunk stats sidecars (``chunk-….stats.json`` next to each processed chunk).

    ``translation`` counters are summed and the ratios (dedup factor, cache hit rate) recomputed from
    the sums; ``templates`` (the per-language template set, the same in every chunk) takes the max per
    counter; any other numeric field is summed. Chunks without a sidecar are counted as missing.
    """
    total, templates, texts, other = TranslationStats(), {}, {}, {}
    found = missing = 0
    for chunk in processed:
        data = read_json(stats_path(chunk))
        if not isinstance(data, dict):
            missing += 1
            continue
        found += 1
        total.add(TranslationStats.from_dict(data.get("translation") or {}))
        for lang, counts in (data.get("templates") or {}).items():
            slot = templates.setdefault(lang, {})
            for key, value in counts.items():
                slot[key] = max(slot.get(key, 0), value)
        for lang, kept in (data.get("template_texts") or {}).items():
            texts.setdefault(lang, kept)  # the language's template set: the same in every chunk
        skip = ("translation", "templates", "template_texts")
        for key, value in _flatten({k: v for k, v in data.items() if k not in skip}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                other[key] = other.get(key, 0) + value
    if not found:
        return {}
    return {"sidecars": found, "chunks_without_sidecar": missing, "translation": total.as_dict(),
            "templates": dict(sorted(templates.items())), "template_texts": dict(sorted(texts.items())),
            **dict(sorted(other.items()))}


def summarise_files(files: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for f in files:
        s = out.setdefault(f["split"], {"files": 0, "rows": 0, "bytes": 0})
        s["files"] += 1
        s["rows"] += f["rows"] or 0
        s["bytes"] += f["bytes"]
    return out


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out

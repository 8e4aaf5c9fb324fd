"""Figures of the dataset card, drawn from stats.json alone (never from the rows): PNG bytes out.

- score distributions per language: one box plot per ``score_*`` column (box = p25..p75, line =
  median, whiskers = p05..p95, dot = mean), from the quantiles ``shard.score_summaries`` records;
- keep rate per language;
- language distribution: share of assigned examples vs the mC4 share the assignment targets
  (renormalised over the run's languages), as in mBLIP's proportional sampling (Sec. 3.1).

Languages are ordered by mC4 share (largest first) in every figure. PNGs carry no software version
or date, so the same stats give the same bytes.
"""

from __future__ import annotations

import io

# Readable names for known score columns; others are derived from the column name.
SCORE_LABELS = {
    "score_bt_chrf": "Back-translation chrF++ (0-100)",
    "score_fwd_logprob": "Forward log-prob per token",
    "score_bt_logprob": "Reverse log-prob per token (source given translation)",
    "score_dual_xent": "Dual conditional cross-entropy (nats per token)",
    "score_script_share": "Share of letters in the target script",
    "score_copy_overlap": "Overlap with the English source",
    "score_repeat_run": "Longest repeated run",
    "score_repeat_ngram": "Share of repeated n-grams",
    "score_compression": "Compression ratio (bytes / zlib bytes)",
    "score_char_repeat": "Most copies of a 2-5 character unit (stutter)",
    "score_en_leak": "Share of the source's words left in English",
    "score_sentence_margin": "Lowest source margin of an output's sentences",
    "score_length_ratio": "Length ratio (normalised by script)",
    "score_langid_rank": "Language-id rank of the target language",
    "score_langid_prob": "Language-id probability",
}


# Fixed axes for bounded scores, so figures of different runs compare at a glance.
SCORE_RANGES = {"score_bt_chrf": (0, 100), "score_script_share": (0, 1), "score_copy_overlap": (0, 1),
                "score_repeat_ngram": (0, 1), "score_langid_prob": (0, 1), "score_en_leak": (0, 1)}


def thresholds_from_filter(filter_settings: dict) -> dict[str, list[tuple[str, float]]]:
    """Score column -> [(knob, value)] for the filter's ``min_X`` / ``max_X`` knobs on ``score_X``."""
    out: dict[str, list[tuple[str, float]]] = {}
    for knob, value in (filter_settings or {}).items():
        if isinstance(value, dict) and knob != "per_language":  # a nested rule set, e.g. ``rules:``
            for column, lines in thresholds_from_filter(value).items():
                out.setdefault(column, []).extend(lines)
        elif knob.startswith(("min_", "max_")) and isinstance(value, (int, float)) and not isinstance(value, bool):
            # ``max_length_ratio_unscored`` binds the same score (``score_length_ratio``) for unscored rows
            out.setdefault(f"score_{knob[4:]}".removesuffix("_unscored"), []).append((knob, float(value)))
    return out


def score_label(column: str) -> str:
    return SCORE_LABELS.get(column, column.removeprefix("score_").replace("_", " ").capitalize())


def ordered_languages(stats: dict) -> list[str]:
    langs = stats.get("languages", {})
    return sorted(langs, key=lambda c: (-langs[c].get("mc4_target_share", 0.0), c))


def _figure(n_langs: int, height: float = 3.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 0.28 * n_langs + 2.0), height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, without software version or date (the same figure gives the same bytes)."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def plot_score_distribution(stats: dict, column: str, thresholds: list[tuple[str, float]] = ()) -> bytes:
    """Box plot of one score column per language, with the filter's thresholds as dashed lines."""
    per_lang = stats.get("scores", {}).get(column, {})
    langs = [c for c in ordered_languages(stats) if c in per_lang]
    fig = _figure(len(langs))
    ax = fig.add_subplot()
    boxes = [
        {"label": lang, "whislo": s["p05"], "q1": s["p25"], "med": s["p50"], "q3": s["p75"], "whishi": s["p95"],
         "mean": s["mean"], "fliers": []}
        for lang in langs for s in [per_lang[lang]]
    ]
    if boxes:
        ax.bxp(boxes, showmeans=True, showfliers=False, patch_artist=True,
               boxprops={"facecolor": "#9ecae1"}, medianprops={"color": "#08519c"},
               meanprops={"marker": "o", "markerfacecolor": "#e6550d", "markeredgecolor": "#e6550d", "markersize": 3})
    for knob, value in thresholds:
        ax.axhline(value, color="#de2d26", linestyle="--", linewidth=1, label=f"{knob} = {value:g}")
    if thresholds:
        ax.legend(fontsize=7, loc="best")
    if column in SCORE_RANGES:
        ax.set_ylim(*SCORE_RANGES[column])
    ax.set_title(f"{score_label(column)} per language", fontsize=9)
    ax.set_xlabel("target language (box p25-p75, line median, whiskers p5-p95, dot mean)", fontsize=8)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)


def plot_keep_rate(stats: dict) -> bytes:
    langs = ordered_languages(stats)
    rates = [100.0 * stats["languages"][c]["keep_rate"] for c in langs]
    fig = _figure(len(langs))
    ax = fig.add_subplot()
    ax.bar(range(len(langs)), rates, color="#31a354")
    total = stats.get("totals", {})
    overall = 100.0 * total.get("kept", 0) / max(1, total.get("kept", 0) + total.get("rejected", 0))
    ax.axhline(overall, color="#636363", linestyle="--", linewidth=1, label=f"all languages: {overall:.1f}%")
    ax.set_xticks(range(len(langs)), langs, rotation=90, fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("kept / assigned (%)")
    ax.set_title("Keep rate per language", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)


def plot_language_distribution(stats: dict) -> bytes:
    langs = ordered_languages(stats)
    s = stats["languages"]
    x = range(len(langs))
    fig = _figure(len(langs))
    ax = fig.add_subplot()
    width = 0.4
    ax.bar([i - width / 2 for i in x], [100 * s[c]["mc4_target_share"] for c in langs], width,
           label="mC4 target share", color="#bdbdbd")
    ax.bar([i + width / 2 for i in x], [100 * s[c]["assigned_share"] for c in langs], width,
           label="assigned share", color="#3182bd")
    ax.set_xticks(list(x), langs, rotation=90, fontsize=7)
    ax.set_ylabel("% of translated examples")
    ax.set_title("Language distribution: assigned examples vs the mC4 target", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)


def render_plots(stats: dict, filter_settings: dict | None = None) -> dict[str, bytes]:
    """Every figure of the card: relative path under the output root -> PNG bytes."""
    thresholds = thresholds_from_filter(filter_settings or {})
    if not stats.get("languages"):
        return {}
    plots = {
        "plots/language_distribution.png": plot_language_distribution(stats),
        "plots/keep_rate.png": plot_keep_rate(stats),
    }
    for column in sorted(stats.get("scores", {})):
        plots[f"plots/scores_{column.removeprefix('score_')}.png"] = plot_score_distribution(
            stats, column, thresholds.get(column, []))
    return plots

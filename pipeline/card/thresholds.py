"""The card's per-language thresholds: every signal's histogram per language, with that language's cut.

Drawn from ``stats.json``'s ``score_histograms`` (every row, kept and rejected; bins shared by the
languages) and the run's filter settings: one figure per signal that has a threshold (a ``min_X`` or
``max_X`` knob on ``score_X``, ``pipeline.calibrate.threshold_knobs``), one row per language (a ridgeline:
the bars are the language's histogram scaled to its largest bin), and in red the cut in effect for that
language: its per-language override, else the global value. PNG files next to README.md, which the Hub
and a browser both show. ``mblip calibrate`` proposes per-language cuts from these distributions.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.calibrate import threshold_knobs
from pipeline.card.plots import ordered_languages, png_bytes, score_label
from pipeline.card.text import table
from pipeline.filters.rules import FilterRules
from pipeline.languages import SOURCE_LANGUAGE, get_language
from pipeline.run_record import RunRecord

THRESHOLD_PLOTS = "plots/thresholds_"  # + the signal's name (``score_`` dropped) + ".png"


def recorded_rules(filter_settings: dict | None) -> FilterRules | None:
    """The rules of the run's recorded ``filter`` settings (None when there are none)."""
    if not filter_settings:
        return None
    return FilterRules.model_validate({k: v for k, v in filter_settings.items() if k in FilterRules.model_fields})


def cuts_in_effect(rules: FilterRules, languages: list[str]) -> dict[str, dict[str, list[tuple[str, float]]]]:
    """Score column -> language -> [(knob, threshold)] of every knob that is on for that language."""
    out: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for code in languages:
        thresholds = rules.for_language(get_language(code).nllb)
        for knob in threshold_knobs():
            value = getattr(thresholds, knob.name)
            if value is not None:
                out.setdefault(knob.column, {}).setdefault(code, []).append((knob.name, float(value)))
    return out


def plot_language_histograms(histogram: dict, column: str, languages: list[str],
                             cuts: dict[str, list[tuple[str, float]]]) -> bytes:
    """One row per language (first on top): its histogram of ``column``, its cut(s) as red ticks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    edges = histogram["edges"]
    fig = Figure(figsize=(7.0, 1.1 + 0.3 * len(languages)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = []
    for i, code in enumerate(languages):
        y = len(languages) - 1 - i
        counts = histogram["languages"][code]
        peak = max(counts) or 1
        ax.stairs([y + 0.85 * n / peak for n in counts], edges, baseline=y, fill=True, color="#9ecae1")
        for _, value in cuts.get(code, []):
            ax.vlines(value, y, y + 0.95, color="#de2d26", linewidth=1.6)
        labels.append(f"{code} ({sum(counts):,})")
    ax.set_yticks([len(languages) - 1 - i + 0.4 for i in range(len(languages))], labels, fontsize=7)
    values = [v for lang_cuts in cuts.values() for _, v in lang_cuts]
    low, high = min([edges[0], *values]), max([edges[-1], *values])
    margin = 0.02 * (high - low or 1.0)
    ax.set_xlim(low - margin, high + margin)
    ax.set_ylim(-0.1, len(languages))
    knobs = sorted({k for lang_cuts in cuts.values() for k, _ in lang_cuts})
    ax.set_title(f"{score_label(column)}: rows per language; red: {', '.join(knobs) or 'no threshold'}", fontsize=9)
    ax.set_xlabel("min_ knob: rows left of the red line are rejected; max_ knob: rows right of it", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    return png_bytes(fig)


def _histogram_languages(stats: dict, column: str) -> list[str]:
    counts = stats.get("score_histograms", {}).get(column, {}).get("languages", {})
    return [code for code in ordered_languages(stats) if code in counts and code != SOURCE_LANGUAGE]


def render_threshold_plots(stats: dict, filter_settings: dict | None) -> dict[str, bytes]:
    """``plots/thresholds_X.png`` for every signal with stored values and a threshold on for some language."""
    rules = recorded_rules(filter_settings)
    if rules is None:
        return {}
    plots = {}
    for column, histogram in sorted(stats.get("score_histograms", {}).items()):
        languages = _histogram_languages(stats, column)
        cuts = cuts_in_effect(rules, languages).get(column, {})
        if languages and cuts:
            name = f"{THRESHOLD_PLOTS}{column.removeprefix('score_')}.png"
            plots[name] = plot_language_histograms(histogram, column, languages, cuts)
    return plots


def render_threshold_section(stats: dict, record: RunRecord, plots: tuple[str, ...]) -> list[str]:
    """The card's "Per-language thresholds" section: which rules decided, the overrides, the figures."""
    rules = recorded_rules(record.settings.get("filter"))
    figures = [p for p in plots if p.startswith(THRESHOLD_PLOTS)]
    if rules is None or not figures:
        return []
    out = ["## Per-language thresholds\n"]
    applied = (record.run or {}).get("rules")
    if applied:
        out.append(f"Decided by the filter rules file `{Path(applied['file']).name}` (sha256 `{applied['sha256']}`), "
                   "applied to the stored scores by `mblip regenerate --rules` (nothing translated again); the "
                   "thresholds are the filter settings above.\n")
    else:
        out.append("Decided by the run config's `filter` section (the thresholds above).\n")
    overrides = [[get_language(code).code, f"`{knob}`", value, getattr(rules, knob)]
                 for code, override in rules.per_language.items() for knob, value in sorted(override.items())]
    if overrides:
        out.append("Per-language overrides of the global thresholds:\n")
        out.append(table(["lang", "knob", "value", "global"], sorted(overrides, key=lambda r: (r[0], r[1]))) + "\n")
    out.append("Each figure shows one signal: per language (rows in brackets) the histogram of every row, kept and "
               "rejected, scaled to its largest bin, and in red the threshold in effect for that language (its "
               "override, else the global value). `mblip calibrate OUT --rules FILE` proposes per-language "
               "thresholds from these distributions; `mblip regenerate OUT --rules FILE` applies them.\n")
    out += [f"![{rel.removeprefix(THRESHOLD_PLOTS).removesuffix('.png').replace('_', ' ')} per language]({rel})\n"
            for rel in figures]
    return out

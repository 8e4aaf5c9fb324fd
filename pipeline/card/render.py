"""``README.md`` at the output root: validated front matter, the body's sections, and the plots."""

from __future__ import annotations

from pathlib import Path

from pipeline.card.metadata import (
    CARD_FILE, build_metadata, front_matter, load_source_card, source_types, validate_metadata,
)
from pipeline.card.sections import SECTIONS, CardInputs
from pipeline.card.plots import render_plots
from pipeline.card.thresholds import render_threshold_plots
from pipeline.run_record import RunRecord


def render_card(stats: dict, files: list[dict], record: RunRecord, plots: list[str] = (),
                cards_dir: str | Path | None = None, images: bool = False, browse: dict | None = None) -> str:
    """README.md text: YAML metadata (validated) and the body. ``images``: the kept shards carry an
    ``image`` column (``output.images: embed``), declared in the features. ``browse``: the data browser
    written into the output (``pipeline.browse.record.site_link``), linked from the card; None: no link."""
    types = source_types(stats, record)
    cards = {t: load_source_card(t, cards_dir) for t in sorted(set(types.values()))}
    meta = build_metadata(stats, files, record, cards, images=images)
    errors = validate_metadata(meta)
    if errors:
        raise ValueError("generated card metadata breaks the Hub rules: " + "; ".join(errors))
    inputs = CardInputs(stats, files, record, cards, meta, tuple(plots), browse)
    return front_matter(meta) + "\n" + "\n".join(block for section in SECTIONS for block in section(inputs))


def render_card_files(stats: dict, files: list[dict], record: RunRecord, cards_dir: str | Path | None = None,
                      plots: bool = True, images: bool = False, browse: dict | None = None) -> dict[str, str | bytes]:
    """Relative path -> content for the card and its plots."""
    filter_settings = record.settings.get("filter")
    figures = {**render_plots(stats, filter_settings), **render_threshold_plots(stats, filter_settings)} \
        if plots else {}
    out: dict[str, str | bytes] = dict(figures)
    out[CARD_FILE] = render_card(stats, files, record, list(figures), cards_dir, images=images, browse=browse)
    return out

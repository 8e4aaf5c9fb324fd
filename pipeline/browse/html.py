"""The site's pages, from string templates. Every value from the data passes through ``esc``
(``html.escape`` with quotes): translations are untrusted text. The pages load only the site's own style
sheet, script and thumbnails, by relative paths, and a Content-Security-Policy forbids anything else."""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass

from pipeline.browse.sample import TaskSample
from pipeline.browse.thumbs import Thumb
from pipeline.languages import get_language
from pipeline.schema import STATUS_KEPT, STATUS_REJECTED

SCRIPT, STYLE = "browse.js", "browse.css"
# Nothing but the site's own files: no network, no inline script a translation could smuggle in.
CSP = "default-src 'none'; img-src 'self' file:; style-src 'self' file:; script-src 'self' file:"
# (label, column, in the row's language) of the texts shown per row, each when the row has it
TEXTS = (("prompt", "prompt", True), ("target", "target", True), ("English source", "text_en", False),
         ("English answer", "answer_en", False), ("English context", "context_en", False),
         ("translation", "text_tgt", True), ("answer", "answer_tgt", True), ("context", "context_tgt", True),
         ("back-translation", "backtranslation_en", False))
FLAG_COLUMNS = ("answer_translated", "translation_truncated")


@dataclass(frozen=True)
class Page:
    """One page of the site: a language and task, its file (relative to the site root) and its counts."""

    lang: str
    task: str
    path: str
    counts: TaskSample
    shown_status: dict[str, int]  # the shown rows by status

    @property
    def shown(self) -> int:
        return sum(self.shown_status.values())


@dataclass(frozen=True)
class SiteInfo:
    title: str
    sample: int  # rows per page at most; 0: every row
    seed: int
    created: str | None  # the manifest's
    thumbnails: int = 0
    image_problems: int = 0


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def format_value(value: object) -> str:
    """A score or signal as shown: 4 significant digits, ``-`` for null (not applicable)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def language_label(code: str) -> str:
    try:
        return f"{get_language(code).name} ({code})"
    except ValueError:
        return code


def _head(title: str, root: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
            f'<link rel="stylesheet" href="{root}{STYLE}">\n<script src="{root}{SCRIPT}" defer></script>\n'
            f'</head>\n<body>\n')


def _select(name: str, label: str, options: list[tuple[str, str]]) -> str:
    """A filter: ``options`` are (value, text); the first option, value "", shows every row."""
    items = "".join(f'<option value="{esc(value)}">{esc(text)}</option>' for value, text in options)
    return f'<label>{esc(label)} <select data-filter="{esc(name)}">{items}</select></label>\n'


def _sample_note(info: SiteInfo, page: Page) -> str:
    counts = page.counts
    kept, rejected = counts.status.get(STATUS_KEPT, 0), counts.status.get(STATUS_REJECTED, 0)
    how = (f"a seeded random sample (seed {info.seed}) of at most {info.sample:,} rows per language and task, kept "
           "and rejected drawn together" if info.sample else "every row (no sample)")
    reasons = "; ".join(f"{esc(reason)} {n:,}" for reason, n in counts.reasons.most_common())
    return (f'<p class="note">Showing {page.shown:,} of {counts.rows:,} rows ({kept:,} kept, {rejected:,} rejected): '
            f'{how}. <code>mblip browse OUT --sample N --seed S</code> draws another.</p>\n'
            + (f'<p class="note">Rejected rows of this language and task by reason (all rows): {reasons}.</p>\n'
               if reasons else ""))


def render_page(info: SiteInfo, page: Page, rows: list[dict], thumbs: list[Thumb], siblings: list[Page]) -> str:
    """One language and task: the sample note, the filters by status and reason, one table row per data row."""
    root = "../"
    status = [("", f"any ({len(rows)})")] + [
        (s, f"{s} ({n})") for s, n in sorted(Counter(r.get("status") or "" for r in rows).items())]
    reasons = [("", "any")] + [(r, f"{r} ({n})") for r, n in sorted(Counter(
        r["reject_reason"] for r in rows if r.get("reject_reason")).items())]
    nav = " ".join(f"<b>{esc(p.task)}</b>" if p.task == page.task else
                   f'<a href="{root}{esc(p.path)}">{esc(p.task)}</a>' for p in siblings)
    body = "".join(_row(row, thumb, root) for row, thumb in zip(rows, thumbs))
    return (_head(f"{language_label(page.lang)}: {page.task}", root)
            + f'<header><a href="{root}index.html">all languages and tasks</a> tasks of this language: {nav}</header>\n'
            + f"<h1>{esc(language_label(page.lang))}: {esc(page.task)}</h1>\n"
            + _sample_note(info, page)
            + '<form class="filters">\n' + _select("status", "status", status) + _select("reason", "reason", reasons)
            + '<span><span id="visible">' + str(len(rows)) + "</span> rows shown</span>\n</form>\n"
            + '<table class="rows">\n<thead><tr><th>image</th><th>texts</th><th>scores and signals</th>'
              "<th>status</th></tr></thead>\n<tbody>\n" + body + "</tbody>\n</table>\n</body>\n</html>\n")


def _row(row: dict, thumb: Thumb, root: str) -> str:
    lang = row.get("lang") or ""
    if thumb.path:
        image = (f'<img src="{root}{esc(thumb.path)}" width="{thumb.width}" height="{thumb.height}" '
                 f'alt="image {esc(row.get("image_id"))}">')
    else:
        image = f'<div class="noimage">no image: {esc(thumb.problem)}</div>'
    lang_attr = f' lang="{esc(lang)}"' if lang else ""
    texts = "".join(f'<dt>{esc(label)}</dt><dd dir="auto"{lang_attr if tagged else ""}>{esc(row[col])}</dd>'
                    for label, col, tagged in TEXTS if row.get(col) not in (None, ""))
    scores = "".join(f"<tr><th>{esc(col)}</th><td>{esc(format_value(row[col]))}</td></tr>"
                     for col in row if col.startswith(("score_", "sig_")) or col in FLAG_COLUMNS)
    status, reason = row.get("status") or "", row.get("reject_reason") or ""
    meta = " · ".join(esc(f"{key} {row[key]}") for key in ("example_id", "source", "source_record_id", "image_path")
                      if row.get(key))
    return (f'<tr class="row" data-id="{esc(row["example_id"])}" data-status="{esc(status)}" '
            f'data-reason="{esc(reason)}" data-task="{esc(row["task"])}">'
            f'<td class="image">{image}</td>'
            f'<td class="texts"><dl>{texts}</dl><div class="meta">{meta}</div></td>'
            f'<td><table class="scores">{scores}</table></td>'
            f'<td><span class="badge {esc(status)}">{esc(status)}</span>'
            + (f'<div class="reason">{esc(reason)}</div>' if reason else "") + "</td></tr>\n")


def render_index(info: SiteInfo, pages: list[Page]) -> str:
    """Every page with its counts; filters by task and by reject reason (pages with rows rejected for it)."""
    tasks = sorted({p.task for p in pages})
    reasons = sum((p.counts.reasons for p in pages), Counter())
    reason_options = [("", "any")] + [(r, f"{r} ({n:,})") for r, n in sorted(reasons.items())]
    rows = "".join(_index_row(p) for p in pages)
    problems = (f" {info.image_problems:,} images could not be shown (each row says why)." if info.image_problems
                else "")
    how = (f"a seeded random sample (seed {info.seed}) of at most {info.sample:,} rows per language and task"
           if info.sample else "every row")
    return (_head(f"{info.title}: browse the rows", "")
            + f"<h1>{esc(info.title)}: browse the rows</h1>\n"
            + f'<p class="note">Built from the output whose manifest was created {esc(info.created or "-")}: '
              f"{len(pages):,} pages, one per language and task, each with {how}; {info.thumbnails:,} thumbnails."
              f"{problems} Row counts are of the whole output.</p>\n"
            + '<form class="filters">\n'
            + _select("task", "task", [("", "any")] + [(t, t) for t in tasks])
            + _select("reason", "rejected for", reason_options)
            + '<span><span id="visible">' + str(len(pages)) + "</span> pages shown</span>\n</form>\n"
            + '<table class="pages">\n<thead><tr><th>language</th><th>task</th><th>rows</th><th>kept</th>'
              "<th>rejected</th><th>keep rate</th><th>shown</th><th>rejected by reason</th></tr></thead>\n<tbody>\n"
            + rows + "</tbody>\n</table>\n</body>\n</html>\n")


def _index_row(page: Page) -> str:
    c = page.counts
    kept, rejected = c.status.get(STATUS_KEPT, 0), c.status.get(STATUS_REJECTED, 0)
    rate = f"{100 * kept / c.rows:.1f}%" if c.rows else "-"
    reasons = "; ".join(f"{esc(r)} {n:,}" for r, n in c.reasons.most_common())
    href = esc(page.path)
    return (f'<tr class="row" data-task="{esc(page.task)}" data-reason="{esc(chr(9).join(sorted(c.reasons)))}">'
            f'<td><a href="{href}">{esc(language_label(page.lang))}</a></td><td>{esc(page.task)}</td>'
            f'<td class="num">{c.rows:,}</td><td class="num"><a href="{href}#status=kept">{kept:,}</a></td>'
            f'<td class="num"><a href="{href}#status=rejected">{rejected:,}</a></td><td class="num">{rate}</td>'
            f'<td class="num">{page.shown:,}</td><td>{reasons or "-"}</td></tr>\n')

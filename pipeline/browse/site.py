"""``build_site``: the whole site of an output, written into a temporary folder and swapped into place;
``link_card``: the dataset card's link to a site at ``OUT/browse``."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path

from pipeline.browse import DEFAULT_SAMPLE, THUMB_PX
from pipeline.browse.html import SCRIPT, STYLE, Page, SiteInfo, render_index, render_page
from pipeline.browse.record import SITE_DIR, SITE_FORMAT, SITE_RECORD, shards_digest, site_link
from pipeline.browse.sample import read_sampled_rows, sample_language
from pipeline.browse.thumbs import Thumbnails
from pipeline.card.metadata import CARD_FILE
from pipeline.card.render import render_card
from pipeline.io import is_url, read_json, sha256_file, write_json_atomic, write_text_atomic
from pipeline.output_dir import MANIFEST, WORK_DIR, output_lock
from pipeline.outputs.images import IMAGES_EMBED
from pipeline.outputs.shards import DATA_DIR, QUARANTINE_DIR, REJECTS_DIR, SPLIT_KEPT, SPLIT_REJECTED
from pipeline.outputs.stats import STATS
from pipeline.run_record import RunRecord

log = logging.getLogger(__name__)

RESERVED = (DATA_DIR, REJECTS_DIR, QUARANTINE_DIR, WORK_DIR, "plots")  # an output's own folders: no site there
SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class SiteReport:
    site_dir: Path
    pages: int
    rows_shown: int
    rows: int
    thumbnails: int
    image_problems: int
    card_linked: bool  # the dataset card links the site (it is OUT/browse and the output has a card)

    @property
    def index(self) -> Path:
        return self.site_dir / "index.html"


def read_manifest(out_dir: Path) -> dict:
    if is_url(str(out_dir)):
        raise ValueError(f"{out_dir}: browse reads a local output; copy it here first (or browse its output.local_dir)")
    path = out_dir / MANIFEST
    manifest = read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise FileNotFoundError(f"{path}: missing or not a manifest; browse needs a finished output (`mblip verify "
                                f"{out_dir}` checks one)")
    return manifest


def check_site_dir(site_dir: Path, out_dir: Path) -> None:
    """Refuse a site folder that is the output itself, one of its own folders, or a folder of someone else's."""
    site, out = site_dir.resolve(), out_dir.resolve()
    if site == out or (site.is_relative_to(out) and site.relative_to(out).parts[0] in RESERVED):
        raise ValueError(f"{site_dir}: the site cannot go among the output's own files; use e.g. {out_dir / SITE_DIR}")
    if site_dir.exists() and (not site_dir.is_dir() or (any(site_dir.iterdir())
                                                          and not (site_dir / SITE_RECORD).is_file())):
        raise ValueError(f"{site_dir}: exists and is not a site written by `mblip browse` (no {SITE_RECORD}); "
                         "choose an empty or new folder")


def shards_by_language(manifest: dict, languages: tuple[str, ...]) -> dict[str, list[str]]:
    """Language -> its kept and rejected shard paths (relative to the output), every language or ``languages``."""
    by_lang: dict[str, list[str]] = {}
    for f in manifest["files"]:
        if f.get("split") in (SPLIT_KEPT, SPLIT_REJECTED):
            by_lang.setdefault(f["lang"], []).append(f["path"])
    unknown = sorted(set(languages) - set(by_lang))
    if unknown:
        raise ValueError(f"--languages: the output has no rows in {', '.join(unknown)}; it has "
                         f"{', '.join(sorted(by_lang)) or 'none'}")
    return {lang: paths for lang, paths in sorted(by_lang.items()) if not languages or lang in languages}


def build_site(out_dir: str | Path, site_dir: str | Path | None = None, *, sample: int = DEFAULT_SAMPLE,
               seed: int = 0, languages: tuple[str, ...] = (), thumb_px: int = THUMB_PX) -> SiteReport:
    """Write the site of ``out_dir`` (a finished output) to ``site_dir`` (default ``OUT/browse``, which the
    dataset card then links; the output is locked meanwhile). ``sample``: rows per page at most, a seeded
    random sample (``seed``); 0: every row. ``languages``: only these (default: every language)."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    site_dir = Path(site_dir) if site_dir else out_dir / SITE_DIR
    if sample < 0:
        raise ValueError(f"--sample must be 0 (every row) or a number of rows per page, got {sample}")
    check_site_dir(site_dir, out_dir)
    linked = site_dir.resolve() == (out_dir / SITE_DIR).resolve()
    if not linked:
        return _build(out_dir, manifest, site_dir, sample, seed, languages, thumb_px, link=False)
    with output_lock(out_dir):  # no run publishes into the output while its card and site are written
        return _build(out_dir, read_manifest(out_dir), site_dir, sample, seed, languages, thumb_px, link=True)


def _build(out_dir: Path, manifest: dict, site_dir: Path, sample: int, seed: int, languages: tuple[str, ...],
           thumb_px: int, link: bool) -> SiteReport:
    for kind in ("tmp", "old"):  # folders a killed build left (hidden: no push or verify sees them)
        for stale in site_dir.parent.glob(f".{site_dir.name}.{kind}-*"):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = site_dir.parent / f".{site_dir.name}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        thumbs = Thumbnails(tmp, manifest.get("image_roots") or {}, thumb_px)
        info = SiteInfo(title=manifest.get("pretty_name") or out_dir.resolve().name, sample=sample, seed=seed,
                        created=manifest.get("created"))
        pages = _write_pages(out_dir, manifest, tmp, info, languages, thumbs)
        info = replace(info, thumbnails=thumbs.written, image_problems=thumbs.problems)
        _write(tmp / "index.html", render_index(info, pages))
        for name in (SCRIPT, STYLE):
            _write(tmp / name, resources.files("pipeline.browse").joinpath(name).read_text(encoding="utf-8"))
        write_json_atomic({
            "format": SITE_FORMAT, "manifest_created": manifest.get("created"),
            "shards_digest": shards_digest(manifest["files"]), "sample": sample, "seed": seed,
            "languages": sorted({p.lang for p in pages}), "thumb_px": thumb_px,
            "pages": [{"lang": p.lang, "task": p.task, "path": p.path, "rows": p.counts.rows, "shown": p.shown,
                       "status": dict(p.counts.status), "reasons": dict(p.counts.reasons),
                       "shown_status": p.shown_status} for p in pages],
        }, tmp / SITE_RECORD)
        _swap_into_place(tmp, site_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    card_linked = link and link_card(out_dir)
    return SiteReport(site_dir, len(pages), sum(p.shown for p in pages), sum(p.counts.rows for p in pages),
                      info.thumbnails, info.image_problems, card_linked)


def _write_pages(out_dir: Path, manifest: dict, site: Path, info: SiteInfo, languages: tuple[str, ...],
                 thumbs: Thumbnails) -> list[Page]:
    pages: list[Page] = []
    for lang, rel_paths in shards_by_language(manifest, languages).items():
        paths = [out_dir / rel for rel in rel_paths]
        samples = sample_language(paths, info.sample, info.seed)
        rows = read_sampled_rows(paths, samples, info.sample)
        siblings = [Page(lang, task, f"{SAFE_NAME.sub('_', lang)}/{SAFE_NAME.sub('_', str(task))}.html",
                         samples[task], dict(Counter(r["status"] for r in rows[task])))
                    for task in sorted(samples, key=str)]
        for page in siblings:
            html = render_page(info, page, rows[page.task], [thumbs.for_row(r) for r in rows[page.task]], siblings)
            _write(site / page.path, html)
        pages += siblings
        log.info("browse: %s: %d pages, %d rows shown", lang, len(siblings), sum(p.shown for p in siblings))
    return pages


def _write(path: Path, text: str) -> None:
    """A file of the site in its temporary folder (the folder as a whole is swapped into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _swap_into_place(tmp: Path, site_dir: Path) -> None:
    """The new site replaces the old one (a site of this tool, checked before) by two renames."""
    old = site_dir.parent / f".{site_dir.name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    if site_dir.exists():
        os.replace(site_dir, old)
    os.replace(tmp, site_dir)
    shutil.rmtree(old, ignore_errors=True)


def link_card(out_dir: Path) -> bool:
    """Render the dataset card again from the output's own artifacts, now with the link to ``OUT/browse``
    (``site_link``), and update its manifest entry; False when the run wrote no card (``card: false``)."""
    manifest = read_manifest(out_dir)
    entries = manifest.get("meta_files") or []
    card = next((e for e in entries if e.get("path") == CARD_FILE), None)
    link = site_link(out_dir, manifest["files"])
    if card is None or link is None:
        return False
    stats = read_json(out_dir / STATS)
    if not isinstance(stats, dict):
        raise FileNotFoundError(f"{out_dir / STATS}: missing or not JSON; the card is rendered from it")
    record = RunRecord(**{f.name: manifest[f.name] for f in fields(RunRecord) if f.name in manifest})
    plots = [e["path"] for e in entries if e.get("path", "").startswith("plots/")]
    text = render_card(stats, manifest["files"], record, plots, images=manifest.get("images") == IMAGES_EMBED,
                       browse=link)
    data = text.encode("utf-8")
    path = out_dir / CARD_FILE
    if path.is_file() and sha256_file(path) == card.get("sha256") and path.read_bytes() == data:
        return True
    # As a publish does: the manifest goes first and comes back last, so it never certifies other bytes.
    (out_dir / MANIFEST).unlink()
    write_text_atomic(text, path)
    card.update(bytes=len(data), sha256=sha256_file(path))
    write_json_atomic(manifest, out_dir / MANIFEST)  # the same manifest but for its card entry
    return True

"""``write_outputs``: build the complete output in staging, then publish what changed.

Shards (reusing recorded groups, see ``shards``), the row invariant and ``stats.json``, the card and
its plots, the caller's extra files (the resolved config) and, last, the manifest are put into
``out_dir/_work/staging``; anything else there is removed; then ``publish`` moves in only new or
changed files, deletes stale files this tool owns, and writes the manifest last (see ``publish``).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path

import polars as pl

from pipeline.browse.record import site_link
from pipeline.card.render import render_card_files
from pipeline.output_dir import MANIFEST, WORK_DIR
from pipeline.outputs.images import IMAGES_EMBED
from pipeline.outputs.publish import STAGING_DIR, clear_staging, publish, stage_file, stage_manifest
from pipeline.outputs.shards import (
    DATA_DIR, QUARANTINE_DIR, REJECTS_DIR, SPLIT_KEPT, SPLIT_QUARANTINE, SPLIT_REJECTED, ShardGroups, ShardLayout,
    inputs_fingerprint,
)
from pipeline.outputs.sort import SORT_BUCKET_ROWS, SORTED_DIR, LanguageSpill, sorted_quarantine
from pipeline.outputs.stats import STATS, compute_stats, sum_sidecars, summarise_files
from pipeline.run_record import RunRecord
from pipeline.schema import QUARANTINE_SCHEMA, ROW_SCHEMA, SCHEMA_VERSION, STATUS_KEPT, STATUS_REJECTED

log = logging.getLogger(__name__)

SPILL_DIR = f"{WORK_DIR}/spill"  # rows regrouped by language while shards are written; removed at the end


def write_outputs(
    out_dir: str | Path,
    processed: Iterable[str | Path],
    quarantine: Iterable[str | Path],
    record: RunRecord,
    *,
    ingest_counts: dict[str, dict[str, int]],
    layout: ShardLayout = ShardLayout(),
    fan_out: int = 1,
    card: bool = True,
    sort_bucket_rows: int = SORT_BUCKET_ROWS,
    extra_files: Mapping[str, str | bytes] | None = None,
    on_group_done: Callable[[str, bool], None] | None = None,
    embed_images: bool = False,
) -> dict:
    """Shard everything, check the row invariant, write stats.json, the card and (last) manifest.json
    into the output folder ``out_dir``, through its staging folder; returns the manifest.

    ``processed``, ``quarantine``: the run's processed and quarantine chunk files. ``record``: the run's
    record; it goes into the manifest (``to_json``), and the card and the stats read it (model, sources,
    settings, target shares, ...). ``ingest_counts``: per source, the ingest's counters (rows, quarantined,
    ...). ``layout``: how rows are cut into files. ``fan_out``: rows per input record (the number of
    languages when every example goes into all of them, else 1).
    ``sort_bucket_rows``: rows sorted in memory at once (see ``SORT_BUCKET_ROWS``); the output does not
    depend on it. ``extra_files``: relative path -> content of further files published with the outputs
    (the resolved config); the manifest lists them with the stats and the card, so ``verify`` checks them.
    ``on_group_done(group, reused)``: called as each shard group is complete in staging (and recorded),
    with whether it was reused. ``embed_images``: the kept shards carry each row's image bytes
    (``output.images: embed``, see ``pipeline/outputs/images.py``), read from ``record.image_roots``.
    """
    out_dir = Path(out_dir)
    staging = out_dir / STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    processed = sorted(str(p) for p in processed)
    quarantine = sorted(str(p) for p in quarantine)
    roots = dict(record.image_roots) if embed_images else None
    fingerprint = inputs_fingerprint(processed + quarantine, layout, {"embed_images": roots} if roots else None)
    groups = ShardGroups(out_dir, staging, fingerprint, layout, embed_images=roots)
    rows = pl.scan_parquet(processed) if processed else pl.LazyFrame(schema=ROW_SCHEMA)
    bad = pl.scan_parquet(quarantine) if quarantine else pl.LazyFrame(schema=QUARANTINE_SCHEMA)
    spill = LanguageSpill(processed, out_dir / SPILL_DIR, sort_bucket_rows)
    present = rows.select("status", "lang").unique().collect()

    def group(split: str, lang: str | None, rel_dir: str, build) -> None:
        reused = groups.write_group(split, lang, rel_dir, build)
        shutil.rmtree(spill.dir / SORTED_DIR, ignore_errors=True)
        if on_group_done is not None:
            on_group_done(rel_dir, reused)

    for status, split, folder in ((STATUS_KEPT, SPLIT_KEPT, DATA_DIR), (STATUS_REJECTED, SPLIT_REJECTED, REJECTS_DIR)):
        for lang in sorted(present.filter(pl.col("status") == status)["lang"].to_list()):
            group(split, lang, f"{folder}/{lang}",
                  lambda with_size, status=status, lang=lang: spill.sorted_rows(status, lang, with_size))
    # Quarantined records are few (the readers' failures); sorted whole in polars' streaming engine.
    group(SPLIT_QUARANTINE, None, QUARANTINE_DIR,
          lambda with_size: sorted_quarantine(bad, spill.dir / SORTED_DIR, with_size))
    groups.prune()
    spill.remove()
    log.info("shards: %d written, %d reused (recorded and intact)", groups.written, groups.reused)

    stats = compute_stats(rows, bad, ingest_counts, fan_out, record.target_shares)
    stats["processing"] = sum_sidecars(processed)
    stats["output"] = summarise_files(groups.files)
    meta_files = [stage_file(staging, STATS, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")]
    if card:
        # The card links a data browser at OUT/browse while it shows these very shards (pipeline/browse/).
        browse = site_link(out_dir, groups.files)
        for rel, content in render_card_files(stats, groups.files, record, images=embed_images, browse=browse).items():
            meta_files.append(stage_file(staging, rel, content))
    for rel, content in (extra_files or {}).items():
        meta_files.append(stage_file(staging, rel, content))
    manifest = stage_manifest(staging, out_dir, {
        "schema_version": SCHEMA_VERSION,
        "created": None,
        **record.to_json(),
        "inputs_fingerprint": groups.fingerprint,
        "layout": asdict(layout),
        **({"images": IMAGES_EMBED} if embed_images else {}),
        "totals": stats["totals"],
        "files": groups.files,
        "meta_files": meta_files,
    })
    clear_staging(staging, {f["path"] for f in groups.files + meta_files} | {MANIFEST})
    publish(staging, out_dir)  # logs what it wrote, kept and removed
    return manifest

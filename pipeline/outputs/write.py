"""``write_outputs``: shard everything, check the row invariant, write stats.json, the card and the manifest."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import polars as pl

from pipeline.io import read_json, write_json_atomic
from pipeline.output_dir import MANIFEST
from pipeline.outputs.shards import (
    DATA_DIR, QUARANTINE_DIR, REJECTS_DIR, SPLIT_KEPT, SPLIT_QUARANTINE, SPLIT_REJECTED, ShardLayout, ShardStore,
    inputs_fingerprint,
)
from pipeline.outputs.sort import SORT_BUCKET_ROWS, SORTED_DIR, LanguageSpill, sorted_quarantine
from pipeline.outputs.stats import STATS, compute_stats, sum_sidecars, summarise_files
from pipeline.schema import QUARANTINE_SCHEMA, ROW_SCHEMA, SCHEMA_VERSION, STATUS_KEPT, STATUS_REJECTED

log = logging.getLogger(__name__)

SPILL_DIR = ".spill"  # rows regrouped by language while shards are written; removed at the end


def write_outputs(
    out_dir: str | Path,
    processed: Iterable[str | Path],
    quarantine: Iterable[str | Path],
    ingest_counts: dict[str, dict[str, int]],
    fan_out: int,
    shard_rows: int,
    row_group_rows: int,
    metadata: dict,
    shard_bytes: int = 0,
    card: bool = True,
    reuse_from: str | Path | None = None,
    sort_bucket_rows: int = SORT_BUCKET_ROWS,
) -> dict:
    """Shard everything, check the row invariant, write stats.json, the card and (last) manifest.json.

    ``metadata`` goes into the manifest as is; the card reads ``model``, ``sources`` (name -> type),
    ``settings`` (translation / filter / assignment values) and ``pretty_name`` from it when present.
    ``reuse_from``: a published output (e.g. when ``out_dir`` is a staging folder); shards its manifest
    certifies under the same inputs fingerprint are hard-linked in instead of recomputed.
    ``sort_bucket_rows``: rows sorted in memory at once (see ``SORT_BUCKET_ROWS``); the output does not
    depend on it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    processed = sorted(str(p) for p in processed)
    quarantine = sorted(str(p) for p in quarantine)
    layout = ShardLayout(shard_rows, shard_bytes, row_group_rows)
    store = ShardStore(out_dir, inputs_fingerprint(processed + quarantine, layout), layout, reuse_from)
    rows = pl.scan_parquet(processed) if processed else pl.LazyFrame(schema=ROW_SCHEMA)
    bad = pl.scan_parquet(quarantine) if quarantine else pl.LazyFrame(schema=QUARANTINE_SCHEMA)
    spill = LanguageSpill(processed, out_dir / SPILL_DIR, sort_bucket_rows)
    groups = rows.select("status", "lang").unique().collect()
    for status, split, folder in ((STATUS_KEPT, SPLIT_KEPT, DATA_DIR), (STATUS_REJECTED, SPLIT_REJECTED, REJECTS_DIR)):
        for lang in sorted(groups.filter(pl.col("status") == status)["lang"].to_list()):
            store.write_group(split, lang, f"{folder}/{lang}",
                              lambda with_size, status=status, lang=lang: spill.sorted_rows(status, lang, with_size))
            shutil.rmtree(spill.dir / SORTED_DIR, ignore_errors=True)
    # Quarantined records are few (the readers' failures); sorted whole in polars' streaming engine.
    store.write_group(SPLIT_QUARANTINE, None, QUARANTINE_DIR,
                      lambda with_size: sorted_quarantine(bad, out_dir / SPILL_DIR / SORTED_DIR, with_size))

    stats = compute_stats(rows, bad, ingest_counts, fan_out, metadata.get("target_shares"))
    stats["processing"] = sum_sidecars(processed)
    stats["output"] = summarise_files(store.files)
    meta_files = [store.write_meta(STATS, json.dumps(stats, indent=2, ensure_ascii=False) + "\n")]
    if card:
        from pipeline.card.render import render_card_files

        for rel, content in render_card_files(stats, store.files, metadata).items():
            meta_files.append(store.write_meta(rel, content))
    spill.remove()
    store.remove_stale({f["path"] for f in store.files} | {f["path"] for f in meta_files})
    log.info("shards: %d written, %d reused (certified and intact)", store.written, store.reused)

    previous = read_json(out_dir / MANIFEST)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created": previous["created"] if previous else _now(),
        **metadata,
        "inputs_fingerprint": store.fingerprint,
        "layout": asdict(layout),
        "totals": stats["totals"],
        "files": store.files,
        "meta_files": meta_files,
    }
    if manifest != previous:
        manifest["created"] = _now()
        store.retire_manifest()
        write_json_atomic(manifest, out_dir / MANIFEST)
    store.finish()
    return manifest


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

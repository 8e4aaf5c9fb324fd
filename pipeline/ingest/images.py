"""Rows whose image file does not exist are quarantined (``image_missing``), not trained on.

A reader only sees the annotation file; whether the image it names is on disk is checked here,
once per distinct path, after parsing. A source whose images are fetched later (e.g. by
``mblip fetch-images``) opts out with ``check_images: false`` in its config.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.ingest.base import ReadBatch
from pipeline.ingest.remote import RemoteImageRoot
from pipeline.schema import QUARANTINE_SCHEMA

REASON_IMAGE_MISSING = "image_missing"


def quarantine_missing_images(batch: ReadBatch, image_root: str | Path | RemoteImageRoot) -> ReadBatch:
    """``batch`` with the rows whose ``image_root / image_path`` is not a file moved to its quarantine.
    ``image_root``: a local folder, or a ``RemoteImageRoot`` (an fsspec URL, listed once)."""
    rows = batch.rows
    if rows.height == 0:
        return batch
    root = image_root if isinstance(image_root, RemoteImageRoot) else Path(image_root)
    # A URL (an image to fetch) or no path at all is not a file to look for.
    exists = {p: (not p or "://" in p or (root.is_file(p) if isinstance(root, RemoteImageRoot) else
                                          (root / p).is_file()))
              for p in rows["image_path"].unique().to_list()}
    mask = rows["image_path"].fill_null("").replace_strict({**exists, "": True}, return_dtype=pl.Boolean)
    missing = rows.filter(~mask)
    if missing.height == 0:
        return batch
    bad = pl.DataFrame(
        {
            "source": missing["source"],
            "source_file": missing["source_file"],
            "record_index": pl.Series([None] * missing.height, dtype=pl.Int64),  # checked after parsing
            "record_id": missing["source_record_id"],
            "field": pl.Series(["image_path"] * missing.height),
            # the path under the image root: no local folder in the published quarantine and card
            "reason": [f"{REASON_IMAGE_MISSING}: {p} is not a file under the image root"
                       for p in missing["image_path"]],
            "raw": [json.dumps(r, ensure_ascii=False, default=str)[:2000]
                    for r in missing.select("source_record_id", "image_id", "image_path", "text_en").to_dicts()],
        },
        schema=QUARANTINE_SCHEMA,
    )
    return ReadBatch(batch.source, rows.filter(mask), pl.concat([batch.quarantine, bad]), batch.counters)

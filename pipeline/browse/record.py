"""What a site records about itself (``site.json``), and whether the dataset card may link to it.

The card links the site at ``OUT/browse`` only while the site shows the output's current shards: the
site records a digest of the kept and rejected shards it was built from, and ``site_link`` compares it
with the shards of the output being written. A run that changes rows drops the link (the site still opens,
saying which output it was built from; ``mblip browse OUT`` builds it again); an unchanged rerun keeps
it, so the card's bytes, and the rest of the output, stay as they were.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.io import read_json
from pipeline.outputs.shards import SPLIT_KEPT, SPLIT_REJECTED

SITE_DIR = "browse"  # the site inside an output folder, the one the card links
SITE_RECORD = "site.json"
SITE_FORMAT = "mblip-browse/1"


def shards_digest(files: list[dict]) -> str:
    """sha256 over the (path, sha256) of the kept and rejected shards of a manifest's ``files``."""
    shards = sorted((f["path"], f.get("sha256")) for f in files if f.get("split") in (SPLIT_KEPT, SPLIT_REJECTED))
    return hashlib.sha256(json.dumps(shards).encode()).hexdigest()


def site_link(out_dir: str | Path, files: list[dict]) -> dict | None:
    """What the card says of the site at ``OUT/browse`` (its index, sample, seed, languages), or None when
    there is none or it was built from other shards than ``files``."""
    record = read_json(Path(out_dir) / SITE_DIR / SITE_RECORD)
    if not isinstance(record, dict) or record.get("format") != SITE_FORMAT \
            or record.get("shards_digest") != shards_digest(files):
        return None
    return {"index": f"{SITE_DIR}/index.html", "sample": record.get("sample"), "seed": record.get("seed"),
            "languages": record.get("languages") or []}

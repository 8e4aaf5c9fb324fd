"""The fetch table: one row per URL ever fetched into an image root, with where it landed or why not.

``<image root>/url_table.parquet`` columns: ``url``, ``status`` (``success`` | ``failed``), ``path``
(relative to the image root; null when failed), ``reason`` (a short class of the failure: ``http_404``,
``timeout``, ``decode_error``, ``too_large``, ``unsupported_scheme``, ``invalid_url``, ...), ``error`` (the
fetcher's own message), ``width``, ``height`` (of the stored file) and ``run`` (the fetch run that settled
it; ``refused`` for URLs that are not fetched). Readers look rows up by URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.images.guard import REASON_TOO_LARGE, REASON_UNSUPPORTED_SCHEME, TOO_LARGE

TABLE = "url_table.parquet"
FETCH_STATS = "fetch_stats.json"  # the last fetch run's counts (``pipeline.images.fetch.FetchReport``)
TABLE_SCHEMA = {
    "url": pl.String(), "status": pl.String(), "path": pl.String(), "reason": pl.String(), "error": pl.String(),
    "width": pl.Int64(), "height": pl.Int64(), "run": pl.String(),
}
STATUS_SUCCESS, STATUS_FAILED = "success", "failed"
_HTTP = re.compile(r"HTTP Error (\d{3})")


def classify_error(message: str | None) -> str:
    """A short, countable failure class for a fetcher's error message."""
    text = (message or "").lower()
    if "redirection to url" in text and "not allowed" in text:  # urllib refuses a redirect to file: and the like
        return REASON_UNSUPPORTED_SCHEME
    if m := _HTTP.search(message or ""):
        return f"http_{m.group(1)}"
    if TOO_LARGE in text:  # over a byte or pixel cap (``pipeline.images.opener``)
        return REASON_TOO_LARGE
    if "unknown url type" in text:  # a redirect to a scheme that is not fetched
        return REASON_UNSUPPORTED_SCHEME
    if "timed out" in text or "timeout" in text:
        return "timeout"
    if any(k in text for k in ("decod", "cannot identify", "truncated", "image file", "imdecode", "cv2", "resize")):
        return "decode_error"
    if any(k in text for k in ("connection", "refused", "name or service", "unreachable", "reset by peer")):
        return "connection_error"
    if "x-robots-tag" in text or "noai" in text:
        return "opted_out"
    return "other" if text else "unknown"


@dataclass(frozen=True)
class ImageEntry:
    path: str | None
    reason: str | None
    error: str | None


class ImageTable:
    """Lookups into an image root's fetch table (scanned lazily: the table is never all in memory)."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def open(cls, image_root: str | Path) -> "ImageTable":
        path = Path(image_root) / TABLE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no fetch table; fetch the images first: "
                                    f"mblip fetch-images SOURCE --out {image_root}")
        return cls(path)

    def lookup(self, urls: Iterable[str]) -> dict[str, ImageEntry]:
        wanted = pl.DataFrame({"url": list(dict.fromkeys(urls))}, schema={"url": pl.String()})
        if not wanted.height:
            return {}
        found = pl.scan_parquet(self.path).join(wanted.lazy(), on="url", how="semi").select(
            "url", "path", "reason", "error").collect()
        return {u: ImageEntry(p, r, e) for u, p, r, e in found.iter_rows()}


def read_table(image_root: str | Path) -> pl.DataFrame:
    path = Path(image_root) / TABLE
    return pl.read_parquet(path) if path.is_file() else pl.DataFrame(schema=TABLE_SCHEMA)

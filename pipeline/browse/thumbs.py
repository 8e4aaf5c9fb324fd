"""Thumbnails of the rows' images, written into the site as small JPEGs (Pillow).

A row's image is its embedded bytes (the ``image`` column of kept shards under ``output.images: embed``)
or the file ``image_path`` names under its source's image root (``image_roots`` in the manifest; a folder
or an fsspec URL). Each distinct file is read once and each distinct image written once, named by the
sha1 of its bytes: a COCO image shared by five captions and its questions is one thumbnail. An image that
cannot be read or decoded gets no thumbnail; the page shows why, naming the file, and the count is reported.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from pipeline.browse import THUMB_PX
from pipeline.images.guard import DEFAULT_MAX_PIXELS, open_rgb
from pipeline.io import join_location, open_location

THUMB_QUALITY = 80  # JPEG quality
THUMBS_DIR = "thumbs"


@dataclass(frozen=True)
class Thumb:
    """A row's thumbnail: ``path`` relative to the site root and its size, or ``problem`` (why none)."""

    path: str | None = None
    width: int = 0
    height: int = 0
    problem: str | None = None


class Thumbnails:
    """Writes the thumbnails of a site under ``site_dir/thumbs/``; ``for_row`` gives a row's."""

    def __init__(self, site_dir: Path, image_roots: dict[str, str], px: int = THUMB_PX):
        self.site_dir = site_dir
        self.image_roots = image_roots
        self.px = px
        self.by_location: dict[str, Thumb] = {}
        self.by_digest: dict[str, Thumb] = {}
        self.problems = 0  # images that could not be read or decoded
        self.written = 0  # thumbnails written

    def for_row(self, row: dict) -> Thumb:
        image = row.get("image")
        if isinstance(image, dict) and image.get("bytes"):
            return self._thumb(image["bytes"], f"the embedded image of row {row['example_id']}")
        rel = row.get("image_path")
        if not rel:
            return Thumb(problem="the row has no image_path")
        root = self.image_roots.get(row.get("source"))
        location = str(join_location(root, rel)) if root else str(rel)
        if location not in self.by_location:
            try:
                with open_location(location, "rb") as handle:
                    data = handle.read()
            except OSError as e:
                self.problems += 1
                where = "" if root else f" (the manifest names no image root for source {row.get('source')})"
                self.by_location[location] = Thumb(problem=f"cannot read {location}{where}: {e}")
            else:
                self.by_location[location] = self._thumb(data, location)
        return self.by_location[location]

    def _thumb(self, data: bytes, what: str) -> Thumb:
        digest = hashlib.sha1(data).hexdigest()
        if digest not in self.by_digest:
            try:
                jpeg, width, height = make_thumbnail(data, self.px)
            except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError; ImageTooLarge
                self.problems += 1
                self.by_digest[digest] = Thumb(problem=f"cannot decode {what}: {e}")
            else:
                rel = f"{THUMBS_DIR}/{digest[:2]}/{digest[2:20]}.jpg"
                path = self.site_dir / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(jpeg)
                self.written += 1
                self.by_digest[digest] = Thumb(rel, width, height)
        return self.by_digest[digest]


def make_thumbnail(data: bytes, px: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of ``data`` scaled to at most ``px`` on its longest side; an image over
    ``max_pixels`` is refused before it is decoded (``ImageTooLarge``), and a JPEG is decoded at a
    reduced scale."""
    rgb = open_rgb(io.BytesIO(data), max_pixels, draft=(px, px))
    rgb.thumbnail((px, px))
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue(), rgb.width, rgb.height

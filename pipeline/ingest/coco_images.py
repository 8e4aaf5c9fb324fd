"""COCO image ids to the image file that exists under an image root.

A-OKVQA and LLaVA-Instruct name COCO 2017 images (``000000033471.jpg``, or just the id), while many
image roots hold the 2014 release (``train2014/COCO_train2014_000000033471.jpg``; the 2017 train and
val sets are the 2014 images re-split, so a 2017 id lives under one of the two 2014 folders). The
mBLIP reference built every LLaVA name as ``COCO_train2014_<id>``, so the ~30% that are val2014
images pointed at files that do not exist and trained as black images. Here each id is looked up
among the candidate names below, in order; an id with no existing file is reported (the readers
quarantine the record), never written as a row.
"""

from __future__ import annotations

import re
from pathlib import Path

# Relative candidates, tried in order (2017 folders first: their names are what the sources give).
CANDIDATES = (
    "train2017/{id:012d}.jpg",
    "val2017/{id:012d}.jpg",
    "train2014/COCO_train2014_{id:012d}.jpg",
    "val2014/COCO_val2014_{id:012d}.jpg",
    "{id:012d}.jpg",
    "COCO_train2014_{id:012d}.jpg",
    "COCO_val2014_{id:012d}.jpg",
)
_ID_IN_NAME = re.compile(r"(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)


def coco_id_from_name(name: str) -> int | None:
    """The COCO id in an image file name (``000000033471.jpg``, ``COCO_val2014_000000033471.jpg``)."""
    match = _ID_IN_NAME.search(name)
    return int(match.group(1)) if match else None


class CocoImageResolver:
    """Finds the existing file of a COCO id under ``root``; the folder listings are read once."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._listings: dict[str, frozenset[str]] = {}

    def _exists(self, rel: str) -> bool:
        folder, _, name = rel.rpartition("/")
        if folder not in self._listings:
            directory = self.root / folder if folder else self.root
            self._listings[folder] = (
                frozenset(p.name for p in directory.iterdir() if p.is_file()) if directory.is_dir() else frozenset()
            )
        return name in self._listings[folder]

    def resolve(self, image_id: int) -> str | None:
        """Path relative to the root of the first candidate that exists, or None."""
        for pattern in CANDIDATES:
            rel = pattern.format(id=image_id)
            if self._exists(rel):
                return rel
        return None

    def tried(self, image_id: int) -> str:
        """The names looked for (for the quarantine reason)."""
        return ", ".join(pattern.format(id=image_id) for pattern in CANDIDATES[:4])

"""POPE's evaluation images, kept out of training (readers of COCO-image sources: A-OKVQA, LLaVA).

POPE (Li et al. 2023, "Evaluating Object Hallucination in Large Vision-Language Models") asks yes/no
questions about 500 COCO val2014 images; mBLIP reports it zero-shot. A-OKVQA and LLaVA name COCO 2017
images, and the 2017 train split holds most of the val2014 images, so their rows (resolved to the file
that exists, ``pipeline/ingest/coco_images.py``) can show a POPE image: a model trained on them would
be scored on images it saw. The ids are read from the POPE annotation files the user gives
(``coco_pope_{random,popular,adversarial}.json``, JSON lines ``{"question_id", "image", "text",
"label"}``, ``image`` = ``COCO_val2014_<id>.jpg``; the same files ``mblip eval pope`` reads): the
project ships no copy of POPE's image list. A row whose COCO id is among them is quarantined with the
reason ``pope_image`` (counted per source in the card), unless ``exclude_pope_images: false``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.base import RecordError, SourceError
from pipeline.ingest.coco_images import coco_id_from_name
from pipeline.io import is_url

POPE_GLOB = "coco_pope_*.json*"  # coco_pope_random.json, ... (.jsonl too)
POPE_STATS = "pope"  # the reader statistics key (pipeline/card/readers.py renders it)
REASON_POPE_IMAGE = "pope_image"


def as_path_list(value):
    """A source's ``pope`` value as a list: one path may be given alone (``pope: data/pope``). POPE's files
    are small and read once per run: they must be local (a URL is an error saying so)."""
    values = [value] if isinstance(value, (str, Path)) else value
    remote = [v for v in values or () if is_url(v)]
    if remote:
        raise ValueError(f"pope: {remote[0]} is a URL; POPE's annotation files must be local: copy them "
                         "(`fsspec`, `aws s3 cp`, ...) and point pope at the copy")
    return values


def pope_files(paths: Iterable[str | Path]) -> list[Path]:
    """The POPE annotation files among ``paths``: a file as it is, a folder's ``coco_pope_*.json`` files."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob(POPE_GLOB))
            if not found:
                raise SourceError(f"{path}: no POPE annotation files ({POPE_GLOB}) in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise SourceError(f"{path}: POPE annotation file or folder not found (the source's `pope`: the "
                              "coco_pope_*.json files of github.com/AoiDragon/POPE, output/coco/; or set "
                              "`exclude_pope_images: false` to train on POPE's images)")
    return files


def read_pope_image_ids(files: Iterable[Path]) -> frozenset[int]:
    """COCO ids of the images the POPE files ask about (their ``image`` name, or ``image_id``)."""
    ids: set[int] = set()
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SourceError(f"{path}, line {number}: not a JSON line of a POPE file ({e})") from e
            image = record.get("image") if isinstance(record, dict) else None
            image_id = coco_id_from_name(image) if isinstance(image, str) else None
            if image_id is None and isinstance(record, dict) and isinstance(record.get("image_id"), int):
                image_id = record["image_id"]
            if image_id is None:
                raise SourceError(f"{path}, line {number}: field `image` (COCO_val2014_<id>.jpg) missing or not "
                                  "a COCO image name")
            ids.add(image_id)
    return frozenset(ids)


@dataclass(frozen=True)
class PopeExclusion:
    """The POPE image ids a reader leaves out (its rows are counted from the quarantine, by reason)."""

    ids: frozenset[int] = frozenset()
    files: int = 0
    enabled: bool = True

    @classmethod
    def from_config(cls, paths: Iterable[str | Path], enabled: bool = True) -> PopeExclusion:
        files = pope_files(paths) if enabled else []
        return cls(read_pope_image_ids(files), len(files), enabled)

    def check(self, coco_id: int | None, field_name: str = "image_id") -> None:
        """Raise the ``pope_image`` record error when ``coco_id`` is a POPE image (and exclusion is on)."""
        if self.enabled and coco_id is not None and coco_id in self.ids:
            raise RecordError(field_name, f"{REASON_POPE_IMAGE}: a POPE evaluation image (COCO val2014), kept out "
                                          "of training (exclude_pope_images: false keeps it)")

    def stats(self) -> dict:
        return {POPE_STATS: {"enabled": self.enabled, "files": self.files, "images": len(self.ids)}}

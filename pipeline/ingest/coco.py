"""COCO captions readers: the official ``captions_*.json`` files and Karpathy's ``dataset_coco.json``.

Official format (cocodataset.org): ``{"images": [{"id", "file_name", ...}], "annotations": [{"id",
"image_id", "caption"}], ...}``; one row per caption annotation, ``source_record_id`` = annotation id.

Karpathy split file (used by BLIP/mBLIP for COCO): ``{"images": [{"filepath", "filename", "cocoid",
"split", "sentences": [{"raw", "sentid", ...}]}]}``; one row per sentence of the selected splits
(``train`` + ``restval`` is the usual training part), ``source_record_id`` = sentid.

Both are streamed with ijson: records are parsed one at a time and emitted in bounded batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline.ingest.base import (
    BatchBuilder,
    ReadBatch,
    RecordError,
    SourceError,
    check_file,
    relative_source_file,
    require,
    require_id,
    require_text,
    safe_image_path,
)
from pipeline.schema import TASK_CAPTION


def iter_json_items(path: Path, prefix: str) -> Iterator[object]:
    """Stream the items of the JSON array at ``prefix`` (ijson syntax, e.g. ``annotations.item``)."""
    import ijson

    try:
        with path.open("rb") as f:
            yield from ijson.items(f, prefix, use_float=True)
    except ijson.JSONError as e:
        raise SourceError(f"{path}: not valid JSON ({e}); fix or re-download the file") from e


class CocoCaptionsReader:
    """Official COCO captions annotations (e.g. ``annotations/captions_train2014.json``)."""

    def __init__(self, annotations: str | Path, name: str = "coco_captions", image_dir: str = "",
                 root: str | Path | None = None):
        self.path = check_file(annotations)
        self.name = name
        self.image_dir = image_dir  # optional sub-folder of the image root, e.g. "train2014"
        self.root = root  # rows name their file relative to it (default: the file's folder)

    def _image_files(self, builder: BatchBuilder) -> dict[int, str]:
        files: dict[int, str] = {}
        for index, image in enumerate(iter_json_items(self.path, "images.item")):
            try:
                image_id = require_id(image, "id")
                name = safe_image_path(require(image, "file_name", str), "file_name")
                if image_id in files:
                    raise RecordError("id", f"duplicate image id {image_id}")
            except RecordError as err:
                rid = image.get("id") if isinstance(image, dict) else None
                builder.quarantine(index, image, rid, RecordError(f"images.{err.field}", err.reason))
                continue
            files[image_id] = f"{self.image_dir}/{name}" if self.image_dir else name
        if not files and not builder.bad:
            raise SourceError(f"{self.path}: no 'images' array; is this a COCO captions file?")
        return files

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, self.root), batch_size)
        files = self._image_files(builder)
        seen: set[int] = set()
        for index, ann in enumerate(iter_json_items(self.path, "annotations.item")):
            rid = ann.get("id") if isinstance(ann, dict) else None
            try:
                ann_id = require_id(ann, "id")
                if ann_id in seen:
                    raise RecordError("id", f"duplicate annotation id {ann_id}")
                image_id = require_id(ann, "image_id")
                caption = require_text(ann, "caption")
                if image_id not in files:
                    raise RecordError("image_id", f"image {image_id} is not listed in 'images'")
            except RecordError as err:
                builder.quarantine(index, ann, rid, RecordError(f"annotations.{err.field}", err.reason))
            else:
                seen.add(ann_id)
                builder.add_row(
                    str(ann_id),
                    task=TASK_CAPTION,
                    image_id=str(image_id),
                    image_path=files[image_id],
                    text_en=caption,
                )
            if builder.full():
                yield builder.flush()
        yield from builder.drain()


class KarpathyCocoReader:
    """Karpathy's ``dataset_coco.json`` split file; ``splits`` selects which images are read."""

    def __init__(
        self, path: str | Path, splits: tuple[str, ...] = ("train", "restval"), name: str = "coco_karpathy",
        root: str | Path | None = None,
    ):
        self.path = check_file(path)
        self.splits = tuple(splits)  # mBLIP: ("train",); train + restval adds ~30k images (see the card)
        self.name = name
        self.root = root  # rows name their file relative to it (default: the file's folder)

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, self.root), batch_size)
        seen: set[int] = set()
        for index, image in enumerate(iter_json_items(self.path, "images.item")):
            rid = image.get("cocoid") if isinstance(image, dict) else None
            try:
                split = require(image, "split", str)
                if split not in self.splits:
                    continue  # not selected: not an input record of this source
                cocoid = require_id(image, "cocoid")
                filename = require(image, "filename", str)
                filepath = image.get("filepath") or ""
                if not isinstance(filepath, str):
                    raise RecordError("filepath", f"expected str, got {type(filepath).__name__}")
                rel = safe_image_path(f"{filepath}/{filename}" if filepath else filename, "filename")
                sentences = require(image, "sentences", list)
            except RecordError as err:
                builder.quarantine(index, image, rid, RecordError(f"images.{err.field}", err.reason))
                if builder.full():
                    yield builder.flush()
                continue
            for sentence in sentences:
                sid = sentence.get("sentid") if isinstance(sentence, dict) else None
                try:
                    sentid = require_id(sentence, "sentid")
                    if sentid in seen:
                        raise RecordError("sentid", f"duplicate sentid {sentid}")
                    text = require_text(sentence, "raw")
                except RecordError as err:
                    builder.quarantine(index, sentence, sid, RecordError(f"images.sentences.{err.field}", err.reason))
                    continue
                seen.add(sentid)
                builder.add_row(str(sentid), task=TASK_CAPTION, image_id=str(cocoid), image_path=rel, text_en=text)
            if builder.full():
                yield builder.flush()
        yield from builder.drain()

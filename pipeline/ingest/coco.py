"""COCO captions readers: the official ``captions_*.json`` files and Karpathy's ``dataset_coco.json``.

Official format (cocodataset.org): ``{"images": [{"id", "file_name", ...}], "annotations": [{"id",
"image_id", "caption"}], ...}``; one row per caption annotation, ``source_record_id`` = annotation id.

Karpathy split file (used by BLIP/mBLIP for COCO): ``{"images": [{"filepath", "filename", "cocoid",
"split", "sentences": [{"raw", "sentid", ...}]}]}``; one row per sentence of the selected splits
(``train`` + ``restval`` is the usual training part), ``source_record_id`` = sentid.

Both are streamed with ijson: records are parsed one at a time and emitted in bounded batches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

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
from pipeline.ingest.source import SourceBase
from pipeline.schema import TASK_CAPTION

KARPATHY_SPLITS = ("train", "restval")  # the usual training part; mBLIP read ("train",) only


def iter_json_items(path: Path, prefix: str, hint: str = "") -> Iterator[object]:
    """Stream the items of the JSON array at ``prefix`` (ijson syntax, e.g. ``annotations.item``).

    No item at all is an error (``SourceError``) that says what the file holds instead: a missing
    key, a value that is not a list, or an empty list would otherwise read as a source of 0 rows.
    ``hint`` is added to that message (e.g. which file was expected).
    """
    import ijson

    # The C parser turns a lone surrogate escape into "?"; the pure-Python one keeps it, so that the
    # record can be quarantined (see ``check_unicode``). Only files that have one pay for it.
    backend = ijson.get_backend("python") if has_lone_surrogate_escape(path) else ijson
    count = 0
    try:
        with path.open("rb") as f:
            for item in backend.items(f, prefix, use_float=True):
                count += 1
                yield item
    except ijson.JSONError as e:
        raise SourceError(f"{path}: {json_error_reason(path, e)}; fix or re-download the file") from e
    if count == 0:
        raise SourceError(f"{path}: {_describe_missing_array(path, prefix.rsplit('.item', 1)[0])}"
                          + (f"; {hint}" if hint else ""))


def json_error_reason(path: Path, error: Exception) -> str:
    """"not valid JSON (...)", or, when the file is not UTF-8, which byte at which offset."""
    bad = first_invalid_utf8(path)
    if bad is not None:
        offset, byte = bad
        return f"byte 0x{byte:02X} at offset {offset} is not valid UTF-8 (JSON must be UTF-8)"
    return f"not valid JSON ({error})"


def first_invalid_utf8(path: Path, chunk_bytes: int = 1 << 20) -> tuple[int, int] | None:
    """(byte offset, byte value) of the first byte that is not valid UTF-8, or None."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(chunk_bytes)
            pending = decoder.getstate()[0]  # an incomplete sequence held back from the last chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:  # e.start counts from the held-back bytes
                data = pending + chunk
                return offset - len(pending) + e.start, data[min(e.start, len(data) - 1)]
            if not chunk:
                return None
            offset += len(chunk)


_LONE_SURROGATE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def has_lone_surrogate_escape(path: Path, chunk_bytes: int = 1 << 24) -> bool:
    """True if the file has a ``\\uD8xx`` escape without its pair (or a lone ``\\uDCxx``): one
    streaming regex pass. A match ending in a chunk's last 12 bytes (an escaped pair's length) may
    only lack its pair because of the cut: it is decided with the next chunk, whose 24-byte overlap
    holds it with its context. A false positive only costs speed (the slower parser)."""
    if chunk_bytes < 6:
        raise ValueError("chunk_bytes must hold an escape (6 bytes)")
    tail = b""
    with path.open("rb") as f:
        while True:
            chunk = f.read(chunk_bytes)
            data, final = tail + chunk, not chunk
            for m in _LONE_SURROGATE_ESCAPE.finditer(data):
                if tail and m.start() < 6:
                    continue  # judged in the last window, where its 6 bytes of context were visible
                if final or m.end() <= len(data) - 12:
                    return True
            if final:
                return False
            tail = data[-24:]


def _describe_missing_array(path: Path, key: str) -> str:
    """Why the array at top-level ``key`` ('' = the document itself) has no items: one streaming pass
    over the top level of the document, stopping at the key."""
    import ijson

    where = f"'{key}'" if key else "the top level"
    keys: list[str] = []
    with path.open("rb") as f:
        events = ijson.parse(f)
        for prefix, event, value in events:
            if not key and prefix == "":
                if event == "start_array":
                    return "the top-level list is empty: the source yields no records"
                return f"expected a JSON list at the top level, found a {_json_kind(event)}"
            if prefix == "" and event == "map_key":
                if value == key:
                    _, kind, _ = next(events)
                    if kind == "start_array":
                        return f"{where} is an empty list: the source yields no records"
                    return f"{where} is a {_json_kind(kind)}, not a list"
                keys.append(value)
    found = ", ".join(f"'{k}'" for k in keys[:12]) or "none"
    return f"no top-level {where} list (top-level keys: {found})"


def _json_kind(event: str) -> str:
    return {"start_map": "JSON object", "start_array": "list", "string": "string", "number": "number",
            "boolean": "boolean", "null": "null"}.get(event, event)


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
        for index, image in enumerate(iter_json_items(self.path, "images.item", hint="is this a COCO captions file?")):
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
        return files

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, self.root), batch_size)
        files = self._image_files(builder)
        seen: set[int] = set()
        annotations = iter_json_items(self.path, "annotations.item", hint="is this a COCO captions file?")
        for index, ann in enumerate(annotations):
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
        self, path: str | Path, splits: tuple[str, ...] = KARPATHY_SPLITS, name: str = "coco_karpathy",
        root: str | Path | None = None,
    ):
        self.path = check_file(path)
        self.splits = tuple(splits)  # mBLIP: ("train",); train + restval adds ~30k images (see the card)
        self.name = name
        self.root = root  # rows name their file relative to it (default: the file's folder)

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, self.root), batch_size)
        seen: set[int] = set()
        images = iter_json_items(self.path, "images.item", hint="is this Karpathy's dataset_coco.json?")
        for index, image in enumerate(images):
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


class CocoCaptionsSource(SourceBase):
    """``type: coco_captions``: the official COCO captions file."""

    type: Literal["coco_captions"] = "coco_captions"
    annotations: Path  # captions_*.json

    def ingest_params(self, work_dir: str | Path) -> dict:
        return {"annotations": str(self.annotations)}

    def open_reader(self, work_dir: str | Path) -> CocoCaptionsReader:
        return CocoCaptionsReader(self.annotations, name=self.source_name)


class KarpathyCocoSource(SourceBase):
    """``type: coco_karpathy``: Karpathy's split file."""

    type: Literal["coco_karpathy"] = "coco_karpathy"
    path: Path  # dataset_coco.json
    splits: tuple[str, ...] = KARPATHY_SPLITS  # which splits to read (empty = the default)

    def ingest_params(self, work_dir: str | Path) -> dict:
        return {"path": str(self.path), "splits": list(self.splits)}

    def open_reader(self, work_dir: str | Path) -> KarpathyCocoReader:
        return KarpathyCocoReader(self.path, splits=tuple(self.splits) or KARPATHY_SPLITS, name=self.source_name)

"""Bring-your-own English data: JSON Lines, CSV, Parquet or a Hugging Face ``datasets`` folder.

``columns`` maps the row fields to the file's column names: ``image`` (a path under the image
root) or ``image_url``, and either ``caption`` or ``question`` + ``answer``; optional ``id`` (the
record id; default: the record's position, so keep the file append-only to keep ids stable) and
``task`` (a column naming ``caption`` or ``vqa`` per record; default: the task the mapped columns
imply). A URL is kept as the image path: fetch the images (e.g. with img2dataset) before training.
Record unit: one row of the file; a bad row is quarantined with its position, id and column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipeline.ingest.base import (
    BatchBuilder, ReadBatch, RecordError, SourceError, relative_source_file, require_text, safe_image_path,
)
from pipeline.ingest.source import SourceBase
from pipeline.schema import TASK_CAPTION, TASK_VQA

FORMATS = ("jsonl", "csv", "parquet", "hf")
FIELDS = ("image", "image_url", "caption", "question", "answer", "id", "task")
TABULAR_TASKS = (TASK_CAPTION, TASK_VQA)


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "hf"
    suffix = path.suffix.lower()
    for fmt, suffixes in (
        ("jsonl", (".jsonl", ".ndjson", ".json")),
        ("csv", (".csv", ".tsv")),
        ("parquet", (".parquet",)),
    ):
        if suffix in suffixes:
            return fmt
    raise SourceError(f"{path}: cannot tell the format from the name; set format to one of {list(FORMATS)}")


class TabularReader:
    def __init__(self, path: str | Path, columns: dict[str, str], name: str = "tabular", format: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"{self.path}: source file not found")
        self.format = format or detect_format(self.path)
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r} is not one of {list(FORMATS)}")
        unknown = sorted(set(columns) - set(FIELDS))
        if unknown:
            raise ValueError(f"columns: unknown field(s) {unknown}; map some of {list(FIELDS)}")
        if ("image" in columns) == ("image_url" in columns):
            raise ValueError("columns: map exactly one of 'image' and 'image_url'")
        if "caption" not in columns and not {"question", "answer"} <= set(columns):
            raise ValueError("columns: map 'caption', or 'question' and 'answer'")
        self.columns = dict(columns)
        self.name = name

    def _records(self) -> Iterator[tuple[int, object]]:
        if self.format == "jsonl":
            with self.path.open(encoding="utf-8") as f:
                for i, line in enumerate(f):
                    if not line.strip():
                        continue
                    try:
                        yield i, json.loads(line)
                    except json.JSONDecodeError as e:
                        yield i, RecordError("<line>", f"not valid JSON ({e.msg})")
        elif self.format == "csv":
            with self.path.open(encoding="utf-8", newline="") as f:
                yield from enumerate(csv.DictReader(f, delimiter="\t" if self.path.suffix.lower() == ".tsv" else ","))
        elif self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                parquet = pq.ParquetFile(self.path)
            except Exception as e:  # pyarrow raises several types for a broken file
                raise SourceError(f"{self.path}: not a readable Parquet file ({e})") from e
            i = 0
            for batch in parquet.iter_batches(batch_size=4096):
                for record in batch.to_pylist():
                    yield i, record
                    i += 1
        else:
            try:
                from datasets import load_from_disk
            except ImportError as e:
                raise ImportError("reading a Hugging Face datasets folder needs `pip install datasets`") from e
            dataset = load_from_disk(str(self.path))
            if hasattr(dataset, "keys"):  # a DatasetDict: the train split, or the only one
                splits = list(dataset.keys())
                dataset = dataset["train" if "train" in splits else splits[0]]
            for i, record in enumerate(dataset):
                yield i, record

    def _row(self, index: int, record: object) -> tuple[str, dict]:
        if isinstance(record, RecordError):
            raise record
        if not isinstance(record, dict):
            raise RecordError("<record>", f"expected a record, got {type(record).__name__}")
        col = self.columns

        def text(field: str) -> str:
            return require_text({col[field]: record.get(col[field])}, col[field])

        rid = str(record.get(col["id"])) if "id" in col and record.get(col["id"]) is not None else str(index)
        if "id" in col and record.get(col["id"]) is None:
            raise RecordError(col["id"], "missing required field")
        if "image" in col:
            image = safe_image_path(text("image"), col["image"])
        else:
            image = text("image_url")
            if not image.startswith(("http://", "https://")):
                raise RecordError(col["image_url"], f"not an http(s) URL: {image[:80]!r}")
        task = text("task") if "task" in col else (TASK_CAPTION if "caption" in col else TASK_VQA)
        if task not in TABULAR_TASKS:
            raise RecordError(col.get("task", "task"), f"task {task!r} is not one of {list(TABULAR_TASKS)}")
        if task == TASK_CAPTION:
            if "caption" not in col:
                raise RecordError(col["task"], "a caption record but no caption column is mapped")
            return rid, dict(task=task, image_id=image, image_path=image, text_en=text("caption"))
        if "question" not in col or "answer" not in col:
            raise RecordError(col["task"], "a vqa record but question/answer columns are not mapped")
        answer = text("answer")
        return rid, dict(
            task=task, image_id=image, image_path=image, text_en=text("question"), answer_en=answer, answers_en=[answer]
        )

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, None), batch_size)
        seen: set[str] = set()
        for index, record in self._records():
            try:
                rid, values = self._row(index, record)
                if rid in seen:
                    raise RecordError(self.columns.get("id", "id"), f"duplicate id {rid}")
                seen.add(rid)
            except RecordError as err:
                raw = None if isinstance(record, RecordError) else record
                rid_raw = record.get(self.columns["id"]) if isinstance(record, dict) and "id" in self.columns else None
                builder.quarantine(index, raw, rid_raw, err)
            else:
                builder.add_row(rid, **values)
            if builder.full():
                yield builder.flush()
        yield from builder.drain()


class TabularSource(SourceBase):
    """``type: tabular``: your own file or ``datasets`` folder, its columns mapped to row fields."""

    type: Literal["tabular"] = "tabular"
    path: Path  # a .jsonl/.csv/.parquet file or a `datasets` folder
    # field -> column: image or image_url, caption or question + answer, optional id and task
    columns: dict[str, str] = Field(min_length=1)
    format: Literal["jsonl", "csv", "parquet", "hf"] | None = None  # None = from the file name

    def open_reader(self, work_dir: str | Path) -> TabularReader:
        return TabularReader(self.path, self.columns, name=self.source_name, format=self.format)

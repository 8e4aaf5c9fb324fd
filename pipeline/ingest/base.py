"""Shared pieces of the readers: batches of rows plus quarantined records, and record validation.

A record that cannot become a row (missing or mistyped field, empty text, duplicate id, image path
escaping the image root, a question without annotations) is quarantined with the file, its index,
its id when readable, the field and the reason. A file that cannot be parsed at all raises
``SourceError`` naming the file: there is nothing to quarantine record by record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from pipeline.schema import QUARANTINE_SCHEMA, SOURCE_SCHEMA, conform, make_example_id

RAW_LIMIT = 2000


class SourceError(ValueError):
    """A source file that cannot be read at all (missing, not JSON, wrong top-level structure)."""


class RecordError(ValueError):
    """One bad record; carries the offending field so the quarantine row can name it."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class ReadBatch:
    """A bounded batch from one source: good rows and quarantined records (either may be empty), and
    counters of what the reader dropped inside kept records (e.g. one blank answer of ten)."""

    source: str
    rows: pl.DataFrame
    quarantine: pl.DataFrame
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.rows.height + self.quarantine.height


@dataclass
class BatchBuilder:
    """Accumulates rows and quarantine records, flushing a ``ReadBatch`` every ``batch_size`` records."""

    source: str
    source_file: str
    batch_size: int
    rows: list[dict] = field(default_factory=list)
    bad: list[dict] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def add_row(self, source_record_id: str, **values: Any) -> None:
        self.rows.append(
            {
                "example_id": make_example_id(self.source, source_record_id),
                "source": self.source,
                "source_record_id": source_record_id,
                "source_file": self.source_file,
                **values,
            }
        )

    def quarantine(self, index: int, record: Any, record_id: Any, err: RecordError,
                   source_file: str | None = None) -> None:
        try:
            raw = json.dumps(record, ensure_ascii=False, default=str)
            raw.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: keep it visible as its JSON escape
            raw = json.dumps(record, ensure_ascii=True, default=str)
        except (TypeError, ValueError):
            raw = repr(record)
        self.bad.append(
            {
                "source": self.source,
                "source_file": source_file or self.source_file,
                "record_index": index,
                "record_id": None if record_id is None else str(record_id),
                "field": err.field,
                "reason": err.reason,
                "raw": raw[:RAW_LIMIT],
            }
        )

    def full(self) -> bool:
        return len(self.rows) + len(self.bad) >= self.batch_size

    def flush(self) -> ReadBatch:
        batch = ReadBatch(
            source=self.source,
            rows=conform(pl.DataFrame(self.rows, schema_overrides=_row_overrides(self.rows)), SOURCE_SCHEMA)
            if self.rows
            else pl.DataFrame(schema=SOURCE_SCHEMA),
            quarantine=pl.DataFrame(self.bad, schema=QUARANTINE_SCHEMA),
            counters=self.counters,
        )
        self.rows, self.bad, self.counters = [], [], {}
        return batch

    def drain(self) -> Iterator[ReadBatch]:
        if self.rows or self.bad or self.counters:
            yield self.flush()


def _row_overrides(rows: list[dict]) -> dict:
    keys = rows[0].keys() if rows else ()
    return {k: v for k, v in SOURCE_SCHEMA.items() if k in keys}


# -- field validation ------------------------------------------------------------------------------


def require(record: Any, field: str, types: type | tuple[type, ...]) -> Any:
    if not isinstance(record, dict):
        raise RecordError("<record>", f"expected a JSON object, got {type(record).__name__}")
    if field not in record or record[field] is None:
        raise RecordError(field, "missing required field")
    value = record[field]
    # bool is an int in Python; an id or count given as true/false is a type error.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise RecordError(field, f"expected {_type_names(types)}, got bool")
    if not isinstance(value, types):
        raise RecordError(field, f"expected {_type_names(types)}, got {type(value).__name__}")
    if isinstance(value, str):
        check_unicode(value, field)
    return value


def check_unicode(value: str, field: str) -> None:
    """A lone surrogate (``"\\ud800"`` in JSON) is no character: the record is quarantined, not turned
    into ``?`` when it is written as UTF-8."""
    bad = _SURROGATE.search(value)
    if bad:
        raise RecordError(field, f"lone surrogate U+{ord(bad.group()):04X}: not valid Unicode text")


def require_text(record: Any, field: str) -> str:
    """The field's text with control characters removed and whitespace runs collapsed to one space."""
    value = require(record, field, str)
    text = " ".join(_CONTROL.sub(" ", value).split())
    if not text:
        raise RecordError(field, "empty text")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 control characters (NUL, BEL, ESC, U+0085, ...): never part of a caption or a question,
# and they break tokenisers and terminals. Tab and newline are whitespace and collapse anyway.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def require_id(record: Any, field: str) -> int:
    value = require(record, field, int)
    if value < 0:
        raise RecordError(field, "negative id")
    return value


def safe_image_path(path: str, field: str) -> str:
    """A relative POSIX path that stays inside the image root (no absolute paths, no ``..``)."""
    p = PurePosixPath(path.replace("\\", "/"))
    if not path or p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise RecordError(field, f"image path {path!r} escapes the image root")
    return str(p)


def _type_names(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: source file not found")
    return path


def source_root(*paths: str | Path) -> Path:
    """The deepest folder holding all of a source's files: what its published ``source_file`` is relative to."""
    import os

    return Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths]))


def relative_source_file(path: str | Path, root: str | Path | None) -> str:
    """``path`` relative to ``root`` (POSIX): no local folder in published rows. Outside it: the file name."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(root).resolve() if root else path.parent).as_posix()
    except ValueError:
        return path.name

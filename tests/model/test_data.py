"""Data: manifest reading, prompt/target pairs, augmentation, tokenisation, striped deterministic streams."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from model.data import Example, ImageAugment, is_validation, read_manifest, row_to_example
from model.loader import IGNORE_INDEX, StreamSettings, TokenSpec, encode_examples, make_loader


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
    french = read_manifest(root / "manifest.json", ["fr"])
    assert [f.path for f in french.files] == [root / "data/fr/part-00000.parquet"]
    with pytest.raises(ValueError, match="languages with kept shards: \\['de', 'fr'\\]"):
        read_manifest(root, ["sw"])
    with pytest.raises(FileNotFoundError, match="data.manifest"):
        read_manifest(tmp_path / "missing")


def _row(**kw):
    base = {"example_id": "e1", "task": "caption", "image_id": "1", "image_path": "a/b.jpg", "source": "coco",
            "text_en": "A red circle.", "answer_en": None, "lang": "de", "text_tgt": "Ein roter Kreis.",
            "answer_tgt": None}
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
    image = tok.convert_tokens_to_ids("<image>")
    return TokenSpec(image, 8, max_length, decoder_only, tok.pad_token_id, tok.eos_token_id, max_target_length)


def test_seq2seq_encoding_matches_the_processor(tiny_dirs):
    processor = _processor(tiny_dirs, "mt5")
    spec = _spec(processor, decoder_only=False)
    examples = [Example("a", Path("x"), "Caption the image in English.", "A red circle."),
                Example("b", Path("y"), "Answer in English: What shape?", "circle")]
    batch = encode_examples(processor.tokenizer, examples, spec)
    ref = processor(text=[e.prompt for e in examples], images=[torch.zeros(3, 32, 32)] * 2, padding=True,
                    return_tensors="pt")
    assert torch.equal(batch["input_ids"], ref["input_ids"])
    assert torch.equal(batch["attention_mask"], ref["attention_mask"])
    target = processor.tokenizer("circle")["input_ids"]
    assert batch["labels"][1, : len(target)].tolist() == target
    assert (batch["labels"][1, len(target) :] == IGNORE_INDEX).all()


def test_decoder_only_labels_cover_only_the_target(tiny_dirs):
    processor = _processor(tiny_dirs, "bloom")
    spec = _spec(processor, decoder_only=True, max_length=12)
    examples = [Example("a", Path("x"), "What shape?", "circle"),
                Example("b", Path("y"), "A long prompt " * 20, "a red square")]
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


def _byte_level_tokenizer():
    """A BLOOM-like byte-level BPE tokenizer (a space before a word is part of its token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>", "<image>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    texts = ["Caption the image in Chinese.", "a red circle", "Answer in German: What shape?"]
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>")


def test_prompt_and_target_are_truncated_separately_keeping_the_language_instruction(tiny_dirs):
    tok = _processor(tiny_dirs, "bloom").tokenizer
    spec = _spec(_processor(tiny_dirs, "bloom"), decoder_only=True, max_length=20, max_target_length=10)
    # A long target (LLaVA-style answer) no longer eats the prompt's budget.
    prompt = "Answer in German: What shape?"
    long_answer = Example("a", Path("x"), prompt, "a red square next to a blue circle " * 10)
    batch = encode_examples(tok, [long_answer], spec)
    labels = batch["labels"][0]
    target = labels[labels != IGNORE_INDEX].tolist()
    assert len(target) == spec.max_target_length and target[-1] == spec.eos_token_id
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0, 8 : 8 + len(prompt_ids)].tolist() == prompt_ids
    # A long question is cut inside the question: the instruction naming the language stays.
    question = "What is the colour of the shape that is drawn " * 8 + "?"
    row = _row(task="vqa", text_en=question, text_tgt=question, answer_en="red", answer_tgt="rot",
               prompt=f"{question} Short answer in German:")
    example = row_to_example(row, {})
    for decoder_only in (True, False):
        processor = _processor(tiny_dirs, "bloom" if decoder_only else "mt5")
        spec = _spec(processor, decoder_only, max_length=20, max_target_length=10)
        batch = encode_examples(processor.tokenizer, [example], spec)
        ids = batch["input_ids"][0][batch["labels"][0] == IGNORE_INDEX] if decoder_only else batch["input_ids"][0]
        ids = [i for i in ids.tolist() if i not in (spec.image_token_index, spec.pad_token_id)]
        full = processor.tokenizer(example.prompt, add_special_tokens=not decoder_only, return_offsets_mapping=True)
        # The instruction's tokens (and mT5's </s>): everything after the question.
        tail = sum(1 for a, b in full["offset_mapping"] if a >= len(question) or a == b)
        assert len(ids) == spec.max_length and tail > 3
        assert ids[-tail:] == full["input_ids"][-tail:]  # "Short answer in German:" (+ </s>) kept
        assert ids[:-tail] == full["input_ids"][: spec.max_length - tail]  # the question's start


def test_decoder_only_target_ids_follow_the_prompt_without_a_separator_as_in_mblip():
    tok = _byte_level_tokenizer()
    spec = TokenSpec(tok.convert_tokens_to_ids("<image>"), 2, 32, True, tok.pad_token_id, tok.eos_token_id, 32)
    german = row_to_example(_row(), {})
    assert german.separator == "" and german.target_lang == "de"
    labels = encode_examples(tok, [german], spec)["labels"][0]
    # The target tokenised on its own, then end of text: prompt ids + target ids, as the reference concatenates.
    expected = tok("Ein roter Kreis.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert labels[labels != IGNORE_INDEX].tolist() == expected
    assert expected != tok(" Ein roter Kreis.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with pytest.raises(ValueError, match="data.target_separator='tab': choose one of none, space"):
        row_to_example(_row(), {}, target_separator="tab")


def test_space_separator_knob_skips_scripts_without_spaces():
    tok = _byte_level_tokenizer()
    spec = TokenSpec(tok.convert_tokens_to_ids("<image>"), 2, 32, True, tok.pad_token_id, tok.eos_token_id, 32)
    chinese = row_to_example(_row(lang="zh", text_tgt="一只红色的圆"), {}, target_separator="space")
    german = row_to_example(_row(), {}, target_separator="space")
    assert (chinese.separator, german.separator) == ("", " ")
    english = row_to_example(_row(lang="zh", text_tgt=None), {}, target_separator="space")  # English fallback
    assert english.separator == " " and english.target_lang == "en"
    unspaced = tok("一只红色的圆", add_special_tokens=False)["input_ids"]
    spaced = tok(" 一只红色的圆", add_special_tokens=False)["input_ids"]
    assert len(spaced) > len(unspaced)  # a space costs a token
    labels = encode_examples(tok, [chinese], spec)["labels"][0]
    assert labels[labels != IGNORE_INDEX].tolist() == unspaced + [tok.eos_token_id]
    labels = encode_examples(tok, [german], spec)["labels"][0]
    expected = tok(" Ein roter Kreis.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert labels[labels != IGNORE_INDEX].tolist() == expected


def test_a_vqa_answer_that_stayed_english_is_an_english_target_in_any_row_language():
    """The pipeline keeps the English answer (answer_tgt = answer_en, answer_translated false) where it did
    not translate it: the target's language is English and the instruction asks for an English answer."""
    kept = _row(task="vqa", lang="zh", text_en="How many dogs?", text_tgt="有几只狗？", answer_en="2",
                answer_tgt="2", answer_translated=False)
    example = row_to_example(kept, {}, target_separator="space")
    assert example.target == "2" and example.target_lang == "en" and example.separator == " "
    assert "English" in example.prompt and "Chinese" not in example.prompt
    # Without the pipeline's flag (older outputs): an answer equal to the English one stayed English.
    assert row_to_example(kept | {"answer_translated": None}, {}).target_lang == "en"
    translated = kept | {"answer_en": "dog", "answer_tgt": "狗", "answer_translated": True}
    example = row_to_example(translated, {}, target_separator="space")
    assert example.target == "狗" and example.target_lang == "zh" and example.separator == ""
    assert row_to_example(translated, {}, english_answer_prob=1.0).target_lang == "en"
    english = _row(task="vqa", lang="en", text_tgt="How many?", answer_en="2", answer_tgt="2", answer_translated=True)
    assert row_to_example(english, {}, english_answer_prob=1.0).target_lang == "en"


def _break_images(demo_output: Path, out: Path, broken_rows) -> Path:
    """A copy of the demo output whose rows at ``broken_rows`` point at a corrupt image file."""
    import polars as pl

    rows = pl.read_parquet(demo_output / "data/en/part-00000.parquet")
    (out / "data/en").mkdir(parents=True)
    corrupt = out / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg")
    paths = [str(corrupt) if i in broken_rows else p for i, p in enumerate(rows["image_path"].to_list())]
    rows.with_columns(image_path=pl.Series(paths)).write_parquet(out / "data/en/part-00000.parquet")
    manifest = json.loads((demo_output / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_unreadable_images_are_counted_across_workers_and_processes(demo_output, tiny_dirs, tmp_path):
    processor = _processor(tiny_dirs, "mt5")
    rows = read_manifest(demo_output).rows
    broken = set(range(0, rows, 7))
    data = read_manifest(_break_images(demo_output, tmp_path / "broken", broken))
    counted, seen = 0, 0
    for rank in range(2):
        settings = StreamSettings(batch_size=4, image_size=32, train=False, rank=rank, world=2)
        for batch in make_loader(data, processor, _spec(processor, False), settings, 2):
            counted += batch["unreadable_images"]
            seen += len(batch["example_ids"])
    assert counted == len(broken) and seen == rows - len(broken)


def test_a_batch_without_readable_images_is_not_fatal(demo_output, tiny_dirs, tmp_path):
    processor = _processor(tiny_dirs, "mt5")
    data = read_manifest(_break_images(demo_output, tmp_path / "broken", set(range(4))))
    settings = StreamSettings(batch_size=4, image_size=32, train=False)
    batches = list(make_loader(data, processor, _spec(processor, False), settings, 0))
    assert batches[0]["example_ids"] == [] and batches[0]["unreadable_images"] == 4
    assert all(b["example_ids"] for b in batches[1:]) and sum(len(b["example_ids"]) for b in batches) == data.rows - 4


@pytest.mark.parametrize(("workers", "world"), [(2, 1), (2, 2), (0, 3)])
def test_val_max_examples_caps_the_total_over_workers_and_processes(demo_output, tiny_dirs, workers, world):
    processor = _processor(tiny_dirs, "mt5")
    data = read_manifest(demo_output)
    total = 0
    for rank in range(world):
        settings = StreamSettings(batch_size=4, image_size=32, train=False, max_examples=7, rank=rank, world=world)
        loader = make_loader(data, processor, _spec(processor, False), settings, workers)
        total += sum(len(b["example_ids"]) for b in loader)
    assert data.rows > 7 * 2 and total == 7


def test_training_rows_count_only_the_selected_tasks_and_sources(demo_output):
    import polars as pl

    from model.data import count_training_rows

    frame = pl.read_parquet(demo_output / "data/en/part-00000.parquet")
    data = read_manifest(demo_output)
    captions = frame.filter(pl.col("task") == "caption").height
    assert 0 < captions < data.rows
    assert count_training_rows(data, tasks=("caption",)) == captions
    assert count_training_rows(data, sources=("coco",)) == frame.filter(pl.col("source") == "coco").height
    held = sum(is_validation(i, 0.25) for i in frame["image_id"].to_list())
    assert count_training_rows(data, val_fraction=0.25) == data.rows - held
    assert count_training_rows(data) == data.rows


def test_validation_rows_are_a_fixed_number_chosen_by_hash_whatever_the_shard_order(demo_output):
    from dataclasses import replace

    import polars as pl

    from model.data import count_training_rows, select_validation_rows

    data = read_manifest(demo_output)
    held = select_validation_rows(data, 7)
    assert len(held) == 7 and held == select_validation_rows(replace(data, files=data.files[::-1]), 7)
    assert held < select_validation_rows(data, 9)  # more rows extend the same choice
    captions = select_validation_rows(data, 5, tasks=("caption",))
    frame = pl.concat([pl.read_parquet(f.path) for f in data.files])
    assert set(frame.filter(pl.col("example_id").is_in(list(captions)))["task"]) == {"caption"}
    assert count_training_rows(data, val_ids=held) == data.rows - 7
    assert count_training_rows(data, tasks=("caption",), val_ids=captions) == frame.filter(
        pl.col("task") == "caption").height - 5
    assert select_validation_rows(data, 0) == frozenset()
    with pytest.raises(ValueError, match=f"data.val_rows={data.rows} would hold out all {data.rows} selected"):
        select_validation_rows(data, data.rows)


def test_the_trainer_validates_on_exactly_the_held_out_rows_and_never_trains_on_them(make_config, tiny_dirs):
    from model.build import build_model
    from model.data import select_validation_rows
    from model.train import check_data, setup_data

    cfg = make_config(data={"val_rows": 6, "val_fraction": 0.0, "shuffle_buffer": 4})
    data = read_manifest(cfg.data.manifest)
    held = select_validation_rows(data, 6)
    assembled = build_model(cfg.model, cfg.lora, cfg.train.stage, torch.device("cpu"))
    shards, verifier = check_data(cfg.data, is_main=True)
    loaders = setup_data(shards, verifier, cfg.data, cfg.train, assembled, rank=0, world=1, skip_batches=0)
    assert loaders.rows == data.rows - 6
    assert sorted(i for b in loaders.make_val_loader() for i in b["example_ids"]) == sorted(held)
    import polars as pl

    everything = set(pl.concat([pl.read_parquet(f.path) for f in data.files])["example_id"])
    stream = iter(loaders.loader)
    trained = {i for _ in range(2 * data.rows // cfg.train.batch_size) for i in next(stream)["example_ids"]}
    assert trained <= everything - held and len(trained) > (data.rows - 6) * 0.8  # two epochs, none held out
def test_an_image_over_the_pixel_cap_is_refused_before_decoding(tmp_path):
    from PIL import Image

    from model.data import load_image
    from pipeline.images.guard import DEFAULT_MAX_PIXELS, ImageTooLarge

    side = 8000  # 64 megapixels: under PIL's own limit, 192 MB once decoded to RGB
    assert side * side > DEFAULT_MAX_PIXELS
    Image.new("1", (side, side)).save(tmp_path / "huge.png")  # a few kB on disk
    with pytest.raises(ImageTooLarge, match="8000x8000 = 64,000,000 pixels, over the cap"):
        load_image(tmp_path / "huge.png")  # a ValueError: the loader counts it as unreadable


def test_a_shard_deleted_during_training_says_what_to_do(demo_output, tmp_path):
    from model.data import iter_rows

    shard = tmp_path / "part-00000.parquet"
    first = read_manifest(demo_output).files[0].path
    shard.write_bytes(Path(first).read_bytes())
    rows = iter_rows([shard, tmp_path / "part-00001.parquet"])
    assert next(rows)  # the first shard reads
    with pytest.raises(FileNotFoundError, match="part-00001.parquet.*listed in the manifest.*mblip verify"):
        list(rows)

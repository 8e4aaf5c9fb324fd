"""xGQA questions: reading the official format, the split by image, and training on them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dev.mt.questions import question_pairs, read_xgqa, split_by_image, write_heldout
from pipeline.nllb.evaluate import read_lines
from pipeline.nllb.shipped import shipped_questions_val_dir


@pytest.fixture(scope="module")
def xgqa_dir(tmp_path_factory, make_xgqa) -> Path:
    """train_48.{en,de}.json.gz in xGQA's format, made from the shipped held-out questions."""
    val = shipped_questions_val_dir()
    ids = [line.split("\t") for line in (val / "val.ids").read_text().splitlines()]
    en, de = read_lines(val / "val.en.gz"), read_lines(val / "val.de.gz")
    records = {lang: {qid: {"question": q, "imageId": img, "answer": "yes"} for (qid, img), q in zip(ids, texts)}
               for lang, texts in (("en", en), ("de", de))}
    return make_xgqa(tmp_path_factory.mktemp("xgqa"), records)


def test_shipped_heldout_questions_are_parallel_and_name_their_images():
    val = shipped_questions_val_dir()
    ids = (val / "val.ids").read_text().splitlines()
    en, de = read_lines(val / "val.en.gz"), read_lines(val / "val.de.gz")
    assert len(ids) == len(en) == len(de) >= 200
    assert all(q.endswith("?") for q in en) and en != de
    assert len({line.split("\t")[1] for line in ids}) == 10  # question_val_images


def test_split_by_image_holds_out_whole_images(xgqa_dir):
    pairs = question_pairs(xgqa_dir, "en", "de")
    train, held = split_by_image(pairs, n_images=3)
    assert len(train) + len(held) == len(pairs) and held and train
    assert not {p.image_id for p in train} & {p.image_id for p in held}
    assert len({p.image_id for p in held}) == 3
    assert split_by_image(pairs, n_images=3) == (train, held)  # deterministic
    with pytest.raises(ValueError, match="nothing left"):
        split_by_image(pairs, n_images=10)


def test_heldout_is_written_in_the_line_layout(xgqa_dir, tmp_path):
    _, held = split_by_image(question_pairs(xgqa_dir, "en", "de"), n_images=2)
    out = write_heldout(held, tmp_path / "val", "en", "de")
    assert read_lines(out / "val.en.gz") == [p.src for p in held]
    assert read_lines(out / "val.de.gz") == [p.tgt for p in held]
    first = write_heldout(held, tmp_path / "again", "en", "de")
    assert (first / "val.de.gz").read_bytes() == (out / "val.de.gz").read_bytes()


def test_bad_records_name_file_question_and_field(make_xgqa, tmp_path):
    root = make_xgqa(tmp_path / "x", {"en": {"7": {"question": "Is it red?", "imageId": "n1"}},
                                       "de": {"7": {"question": " ", "imageId": "n1"}}})
    with pytest.raises(ValueError, match=r"train_48\.de\.json\.gz: question 7: field 'question'"):
        question_pairs(root, "en", "de")
    root = make_xgqa(tmp_path / "y", {"en": {"7": {"question": "Is it red?", "imageId": "n1"}},
                                       "de": {"7": {"question": "Ist es rot?", "imageId": "n2"}}})
    with pytest.raises(ValueError, match="question 7: imageId differs"):
        question_pairs(root, "en", "de")
    with pytest.raises(FileNotFoundError, match="train_48.fr.json"):
        question_pairs(root, "en", "fr")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="list.json: expected an object keyed by question id"):
        read_xgqa(tmp_path / "list.json")


def test_training_on_questions_holds_out_images_and_scores_them(tiny_corpus, tiny_cfg, xgqa_dir, tmp_path):
    from dev.mt.train_small import encode_pairs, encode_questions, prepare_model_dir, train

    cfg = replace(tiny_cfg, questions_repeat=3, question_val_images=2, max_steps=2)
    init = prepare_model_dir(tiny_corpus, tmp_path / "enc", cfg)
    pairs, val_dir = encode_questions(xgqa_dir, init, tmp_path / "enc", cfg)
    train_q, held = split_by_image(question_pairs(xgqa_dir, "en", "de"), 2)
    assert len(pairs) == 3 * 2 * len(train_q)
    assert read_lines(val_dir / "val.en.gz") == [p.src for p in held]
    assert len(encode_pairs(tiny_corpus, init, "train", cfg)) == 6 * 100

    train(tiny_corpus, tmp_path / "run", cfg, questions_dir=xgqa_dir)
    evals = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if "eval_mean" in line]
    assert {"xgqa:eng_Latn-deu_Latn", "xgqa:deu_Latn-eng_Latn"} <= set(evals[-1]["eval_chrf_pp"])
    with pytest.raises(ValueError, match="--questions"):
        train(tiny_corpus, tmp_path / "run2", cfg)

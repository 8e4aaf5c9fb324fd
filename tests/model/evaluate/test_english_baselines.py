"""The English baselines: COCO Karpathy test captioning and VQAv2 val with the official VQA accuracy."""

from __future__ import annotations

import json

import pytest

from model.evaluate.normalize import vqa_accuracy
from model.evaluate.readers import BenchmarkFormatError, read_benchmark


@pytest.mark.parametrize(("prediction", "answers", "accuracy"), [
    # 3 of 10 humans said it. Leaving out one of those 3 leaves 2 matches among the other 9 -> 2/3; leaving
    # out one of the other 7 leaves 3 -> 1. Mean: (3 x 2/3 + 7 x 1) / 10 = 0.9.
    ("Red.", ["red"] * 3 + ["orange"] * 7, 0.9),
    # 1 of 10: (1 x 0 + 9 x 1/3) / 10 = 0.3
    ("red", ["red"] + ["orange"] * 9, 0.3),
    # 2 of 10: (2 x 1/3 + 8 x 2/3) / 10 = 0.6; the prediction is cleaned ("a square" -> "square")
    ("a square", ["square"] * 2 + ["box"] * 8, 0.6),
    # 4 of 10: 3 or 4 matches remain whichever human is left out -> 1
    ("box", ["box"] * 4 + ["square"] * 6, 1.0),
    ("two", ["2"] * 10, 1.0),  # number words become digits in the prediction
    ("no idea", ["2"] * 10, 0.0),
    # The official quirk: identical human answers are compared as they are, without cleaning them
    ("two", ["Two"] * 10, 0.0),
    # ... while differing ones get the punctuation step only: "red." -> "red" (5 + 5 matches -> 1)
    ("red", ["red."] * 5 + ["red"] * 5, 1.0),
])
def test_official_vqa_accuracy_by_hand(prediction, answers, accuracy):
    assert vqa_accuracy(prediction, answers) == pytest.approx(accuracy)


def test_vqav2_reader_joins_questions_with_their_ten_answers(benchmark_files):
    from model.evaluate.metrics import score_items

    data_dir, images, _ = benchmark_files("vqav2")
    data = read_benchmark("vqav2", data_dir, images, ["en"], "val2014")
    assert [item.key for item in data.items] == ["5001", "5002", "5003"]
    assert data.items[0].prompt == "Question: What colour is it? Short answer in English:"
    assert data.items[0].references == ("red",) * 3 + ("orange",) * 7  # conftest.VQAV2_ANSWERS
    assert data.items[2].images[0].name == "COCO_val2014_000000000099.jpg"
    # 0.9 + 1.0 + 0.6 (the cases above) over 3 questions
    summary, per_item = score_items("vqav2_accuracy", [i.references for i in data.items],
                                    ["Red", "2", "square"], "en")
    assert per_item == pytest.approx([0.9, 1.0, 0.6]) and summary["score"] == pytest.approx(250 / 3)


def test_a_vqav2_question_without_annotation_names_file_and_question(benchmark_files):
    data_dir, images, _ = benchmark_files("vqav2")
    path = data_dir / "v2_mscoco_val2014_annotations.json"
    annotations = json.loads(path.read_text())
    annotations["annotations"] = annotations["annotations"][1:]
    path.write_text(json.dumps(annotations))
    with pytest.raises(BenchmarkFormatError, match=r"questions.json, question 0: question_id 5001 has no annotation"):
        read_benchmark("vqav2", data_dir, images, ["en"], "val2014")
    data = read_benchmark("vqav2", data_dir, images, ["en"], "val2014", skip_missing=True)
    assert len(data.items) == 2 and data.skipped[0]["kind"] == "malformed record"


def test_karpathy_reader_takes_the_test_split_only(benchmark_files):
    data_dir, images, _ = benchmark_files("coco")
    data = read_benchmark("coco", data_dir, images, ["en"], "test")
    assert [item.key for item in data.items] == ["42", "99"]  # image 73 is in train
    assert data.items[0].references == ("A red square.", "A red box on white.")
    assert data.items[0].prompt == "Caption in English: "
    assert data.items[0].images[0] == images / "val2014" / "COCO_val2014_000000000042.jpg"
    train = read_benchmark("coco", data_dir, images, ["en"], "train")
    assert [item.key for item in train.items] == ["73"]
    with pytest.raises(BenchmarkFormatError, match=r"dataset_coco.json: no image of split 'tset'; the file has test"):
        read_benchmark("coco", data_dir, images, ["en"], "tset")


def test_a_file_without_the_expected_list_says_what_it_holds(benchmark_files):
    """The annotations written where the questions belong: the error names the file and its top-level keys."""
    data_dir, images, _ = benchmark_files("vqav2")
    questions = data_dir / "v2_OpenEnded_mscoco_val2014_questions.json"
    questions.write_text((data_dir / "v2_mscoco_val2014_annotations.json").read_text())
    with pytest.raises(BenchmarkFormatError, match=r"questions\.json: no top-level 'questions' list \(top-level keys: "
                                                   r"'info', .*'annotations'\); is this VQAv2's questions file\?"):
        read_benchmark("vqav2", data_dir, images, ["en"], "val2014")

"""Tiny training files in each recipe's published format (coloured squares), for the tests and a dry run.

``write_training_samples(recipe, train_file, images)`` writes the file where a config's ``finetune.train_file``
points and the images under ``finetune.images``: GQA question JSON, SNLI-VE JSON lines, NLVR2 ``train.json`` (with
its ``directory`` sub-folders) or Karpathy's ``dataset_flickr30k.json`` (one image in the test split, which the
recipe leaves out). In the NLVR2 sample every left image is grey and every sentence the same: only the right
image (red or blue square) decides the label, so a model can only learn it through the second image.
"""

from __future__ import annotations

import json
from pathlib import Path

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}
GREY = (128, 128, 128)
NLVR2_SENTENCE = "The right image shows a red square."
SNLI_LABELS = ("entailment", "neutral", "contradiction")


def square(path: Path, colour: tuple[int, int, int], index: int = 0) -> None:
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (48, 48), (245, 245, 245))
    ImageDraw.Draw(image).rectangle((6 + index % 3 * 3, 6, 42, 42 - index % 3 * 3), fill=colour)
    image.save(path)


def _colour(i: int) -> str:
    return list(COLOURS)[i % len(COLOURS)]


def write_gqa(train_file: Path, images: Path, n: int) -> None:
    questions = {}
    for i in range(n):
        square(images / f"g{i}.jpg", COLOURS[_colour(i)], i)
        questions[str(20000 + i)] = {"imageId": f"g{i}", "question": "What colour is the square?",
                                     "answer": _colour(i), "fullAnswer": f"The square is {_colour(i)}.",
                                     "isBalanced": True, "semantic": [], "types": {"structural": "query"}}
    train_file.write_text(json.dumps(questions), encoding="utf-8")


def write_snli_ve(train_file: Path, images: Path, n: int) -> None:
    lines = []
    for i in range(n):
        image_id = str(4000 + i)
        square(images / f"{image_id}.jpg", COLOURS[_colour(i)], i)
        label = SNLI_LABELS[i % 3]
        lines.append({"Flickr30K_ID": image_id, "captionID": f"{image_id}.jpg#0", "pairID": f"{image_id}.jpg#0r{i}",
                      "sentence1": f"A {_colour(i)} square.", "sentence2": f"The square is {_colour(i)}.",
                      "gold_label": label, "annotator_labels": [label]})
    train_file.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def write_nlvr2(train_file: Path, images: Path, n: int) -> None:
    lines = []
    for i in range(n):
        folder = i % 2  # NLVR2's train images sit in numbered sub-folders, named by the record's "directory"
        square(images / str(folder) / f"train-{i}-0-img0.png", GREY)  # the same left image in every pair
        square(images / str(folder) / f"train-{i}-0-img1.png", COLOURS[_colour(i)], i)
        lines.append({"identifier": f"train-{i}-0-0", "sentence": NLVR2_SENTENCE, "directory": folder,
                      "label": "True" if _colour(i) == "red" else "False", "synset": "square", "query": "square"})
    train_file.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def write_karpathy_flickr30k(train_file: Path, images: Path, n: int) -> None:
    records = []
    for i in range(n + 1):
        filename = f"{6000 + i}.jpg"
        square(images / filename, COLOURS[_colour(i)], i)
        sentences = [{"raw": f"A {_colour(i)} square.", "tokens": ["a", _colour(i), "square"], "imgid": i,
                      "sentid": 2 * i + k} for k in range(2)]
        records.append({"filename": filename, "imgid": i, "split": "train" if i < n else "test",
                        "sentids": [s["sentid"] for s in sentences], "sentences": sentences})
    train_file.write_text(json.dumps({"images": records, "dataset": "flickr30k"}), encoding="utf-8")


WRITERS = {"xgqa": write_gqa, "xvnli": write_snli_ve, "marvl": write_nlvr2, "xflickrco": write_karpathy_flickr30k}


def write_training_samples(recipe: str, train_file: str | Path, images: str | Path, n: int = 8) -> Path:
    """``n`` training examples of ``recipe`` in its published format; returns ``train_file``."""
    train_file, images = Path(train_file), Path(images)
    train_file.parent.mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    WRITERS[recipe](train_file, images, n)
    return train_file

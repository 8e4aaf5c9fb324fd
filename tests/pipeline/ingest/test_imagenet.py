"""ImageNet classification and yes/no examples from a Babel-ImageNet style label file."""

import json

import polars as pl
import pytest

from pipeline.ingest.imagenet import ImagenetReader
from pipeline.schema import TASK_CLASSIFY, TASK_DECIDE

ENGLISH = ["tench", "goldfish", "great white shark", "tiger shark", "hammerhead"]


def _tree(tmp_path, per_class=6, labels=None):
    root = tmp_path / "train"
    wnids = [f"n0{i:07d}" for i in range(len(ENGLISH))]
    for wnid in wnids:
        (root / wnid).mkdir(parents=True)
        for k in range(per_class):
            (root / wnid / f"{wnid}_{k}.JPEG").write_bytes(b"x")
    classes = tmp_path / "classnames.json"
    classes.write_text(json.dumps(ENGLISH))
    label_file = tmp_path / "babel_imagenet-298.json"
    label_file.write_text(
        json.dumps(
            labels
            if labels is not None
            else {
                # German covers 4 classes; two sharks share one German name: never a negative for each other.
                "de": [[0, 1, 2, 3], ["Schleie", "Goldfisch", "Hai", "Hai"]],
                "fr": [[4, 1], ["requin-marteau", "poisson rouge"]],
            }
        )
    )
    return root, classes, label_file


def _read(root, classes, labels, **kw):
    batches = list(ImagenetReader(root, classes, labels, **kw).iter_batches(50))
    return pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])


def test_one_example_per_covered_class_per_pass_and_task(tmp_path):
    rows, bad = _read(*_tree(tmp_path), passes=3)
    assert bad.height == 0
    covered = {"en": 5, "de": 4, "fr": 2}
    for task in (TASK_CLASSIFY, TASK_DECIDE):
        part = rows.filter(pl.col("task") == task)
        assert dict(part.group_by("preset_lang").len().iter_rows()) == {k: 3 * v for k, v in covered.items()}
    de = rows.filter((pl.col("task") == TASK_CLASSIFY) & (pl.col("preset_lang") == "de"))
    assert set(de["text_en"]) == {"Schleie", "Goldfisch", "Hai"}


def test_tasks_use_disjoint_images_and_are_seeded(tmp_path):
    tree = _tree(tmp_path, per_class=40)
    rows, _ = _read(*tree, passes=2, seed=1)
    classify = set(rows.filter(pl.col("task") == TASK_CLASSIFY)["image_path"])
    decide = set(rows.filter(pl.col("task") == TASK_DECIDE)["image_path"])
    # every example its own image (20 per class and task, fewer uses): 2 passes x 11 covered classes
    assert len(classify) == len(decide) == 2 * (5 + 4 + 2) and not classify & decide
    again, _ = _read(*tree, passes=2, seed=1)
    assert again.equals(rows)
    other, _ = _read(*tree, passes=2, seed=2)
    assert other["answer_en"].to_list() != rows["answer_en"].to_list()


def test_negative_is_never_the_true_class_nor_a_same_named_class(tmp_path):
    rows, _ = _read(*_tree(tmp_path, per_class=200), passes=40)
    decide = rows.filter(pl.col("task") == TASK_DECIDE)
    answers = decide["answer_en"].to_list()
    assert 0.4 < answers.count("yes") / len(answers) < 0.6
    for r in decide.iter_rows(named=True):
        true_name = r["answers_en"][0]
        if r["answer_en"] == "no":
            assert r["text_en"].casefold() != true_name.casefold()
        else:
            assert r["text_en"] == true_name
    de_no = decide.filter((pl.col("preset_lang") == "de") & (pl.col("answer_en") == "no"))
    assert "Hai" not in de_no.filter(pl.col("answers_en").list.first() == "Hai")["text_en"].to_list()


def test_bad_labels_and_classes_without_images_quarantined(tmp_path):
    root, classes, labels = _tree(
        tmp_path,
        labels={
            "de": [[0, 9, 2], ["Schleie", "Zu gross", " "]],
            "xx": [[0], ["?"]],
            "fr": [[1], ["poisson rouge"], [3]],
        },
    )
    for f in (root / "n00000003").iterdir():
        f.unlink()
    rows, bad = _read(root, classes, labels, passes=1)
    got = {(r["record_id"], r["field"]) for r in bad.iter_rows(named=True)}
    assert ("de:9", "de[0][1]") in got and ("de:2", "de[1][2]") in got
    assert ("xx", "language") in got and ("fr", "fr") in got
    assert ("classify:en:3:0", "images") in got and ("decide:en:3:0", "images") in got
    no_images = bad.filter(pl.col("field") == "images")["reason"].to_list()
    assert no_images and all("n00000003/" in r and str(tmp_path) not in r for r in no_images)  # no local folder
    assert set(rows.filter(pl.col("preset_lang") == "de")["text_en"]) == {"Schleie"}


def test_passes_knob_validated(tmp_path):
    with pytest.raises(ValueError, match="passes"):
        ImagenetReader(*_tree(tmp_path), passes=0)

"""ImageNet classification and yes/no examples from a Babel-ImageNet style label file."""

import json
from pathlib import Path

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
    assert ("fr", "fr") in got and not [r for r in got if r[0] == "xx"]  # "xx": no project language, reported
    assert ("classify:en:3:0", "images") in got and ("decide:en:3:0", "images") in got
    no_images = bad.filter(pl.col("field") == "images")["reason"].to_list()
    assert no_images and all("n00000003/" in r and str(tmp_path) not in r for r in no_images)  # no local folder
    assert set(rows.filter(pl.col("preset_lang") == "de")["text_en"]) == {"Schleie"}


def test_passes_knob_validated(tmp_path):
    with pytest.raises(ValueError, match="passes"):
        ImagenetReader(*_tree(tmp_path), passes=0)


EXCERPT = Path(__file__).resolve().parents[2] / "data" / "babel_imagenet-excerpt.json"


def _thousand_classes(tmp_path):
    root = tmp_path / "train"
    wnids = [f"n{i:08d}" for i in range(1000)]
    for wnid in wnids:
        (root / wnid).mkdir(parents=True)
        for k in range(2):
            (root / wnid / f"{wnid}_{k}.JPEG").write_bytes(b"x")
    classes = tmp_path / "openai_classnames.json"
    classes.write_text(json.dumps([f"class {i}" for i in range(1000)]))
    return root, classes


def test_the_real_babel_imagenet_file_maps_every_key_as_the_reference(tmp_path):
    """The published file's keys are upper case (``FR``, ``DE``...): every one of the excerpt's 12 maps to
    its project language, and each language gets one row per class it covers."""
    data = json.loads(EXCERPT.read_text(encoding="utf-8"))
    assert len(data) == 12 and all(key.isupper() for key in data)
    root, classes = _thousand_classes(tmp_path)
    reader = ImagenetReader(root, classes, EXCERPT, passes=1)
    batches = list(reader.iter_batches(5000))
    rows, bad = pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])
    assert bad.height == 0
    classify = rows.filter(pl.col("task") == TASK_CLASSIFY)
    per_lang = dict(classify.group_by("preset_lang").len().iter_rows())
    expected = {key.lower(): len(entry[0]) for key, entry in data.items()}
    expected["en"] = 1000  # English: the class-name list, as the reference replaced EN with the OpenAI names
    assert per_lang == expected
    de = dict(zip(*data["DE"]))
    assert set(classify.filter(pl.col("preset_lang") == "de")["text_en"]) == {" ".join(n.split()) for n in de.values()}
    stats = reader.stats["babel_imagenet"]
    assert stats["keys"] == 12 and stats["unmapped"] == [] and stats["english"] == "EN"
    assert stats["mapped"] == {key.lower(): key for key in data}


def test_legacy_hebrew_and_filipino_keys_and_unmapped_keys_reported_not_quarantined(tmp_path):
    data = json.loads(EXCERPT.read_text(encoding="utf-8"))
    extra = {"HE": [[0, 1], ["טינקה", "דג זהב"]], "TL": [[1], ["goldpis"]], "LA": [[1], ["carassius auratus"]],
             "ALS": [[1], ["Goldfisch"]], "BE-TARASK": [[1], ["залатая рыбка"]]}
    path = tmp_path / "babel_imagenet-298.json"
    path.write_text(json.dumps({**data, **extra}, ensure_ascii=False))
    root, classes = _thousand_classes(tmp_path)
    reader = ImagenetReader(root, classes, path, passes=1, tasks=(TASK_CLASSIFY,))
    batches = list(reader.iter_batches(5000))
    rows, bad = pl.concat([b.rows for b in batches]), pl.concat([b.quarantine for b in batches])
    assert bad.height == 0  # keys of no project language are not thousands of quarantined rows
    assert set(rows.filter(pl.col("preset_lang") == "iw")["text_en"]) == {"טינקה", "דג זהב"}
    assert rows.filter(pl.col("preset_lang") == "fil")["text_en"].to_list() == ["goldpis"]
    stats = reader.stats["babel_imagenet"]
    assert stats["mapped"]["iw"] == "HE" and stats["mapped"]["fil"] == "TL"
    assert stats["unmapped"] == ["ALS", "BE-TARASK", "LA"]
    from pipeline.card.readers import render_reader_notes

    [note] = render_reader_notes({"imagenet": reader.stats}, [])
    assert "3 keys map to no project language" in note and "`ALS`, `BE-TARASK`, `LA`" in note
    assert "HE -> `iw`" in note and "TL -> `fil`" in note


def test_the_demo_label_file_uses_the_published_key_style(tmp_path, demo_root):
    import shutil

    from pipeline.demo.tasks import generate_task_demo_data

    root = tmp_path / "demo"
    shutil.copytree(demo_root, root)
    files = generate_task_demo_data(root)
    labels = json.loads(files["imagenet_labels"].read_text(encoding="utf-8"))
    assert sorted(labels) == ["DE", "FR", "LA"]  # upper case, as babel_imagenet-298.json; Latin is no project language
    reader = ImagenetReader(files["imagenet_images"], files["imagenet_classes"], files["imagenet_labels"], passes=1)
    batches = list(reader.iter_batches(5000))
    rows = pl.concat([b.rows for b in batches])
    assert set(rows["preset_lang"]) == {"en", "de", "fr"}
    assert reader.stats["babel_imagenet"]["unmapped"] == ["LA"]


SHARED_EXCERPT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "real-formats" / EXCERPT.name


@pytest.mark.skipif(not SHARED_EXCERPT.is_file(), reason="../shared/data/real-formats is not next to this checkout")
def test_the_committed_excerpt_is_the_published_one():
    assert EXCERPT.read_bytes() == SHARED_EXCERPT.read_bytes()

"""CHAIR on hand-computed cases: which words of a caption are COCO objects, the ground truth from instance
annotations plus reference captions, CHAIRs and CHAIRi, and bad annotation files."""

from __future__ import annotations

import json

import pytest

from model.evaluate.chair import CocoObjects, chair_scores
from model.evaluate.readers import BenchmarkFormatError, read_benchmark


@pytest.fixture(scope="module")
def objects() -> CocoObjects:
    return CocoObjects.load()


def test_the_synonym_list_has_the_80_coco_categories(objects):
    categories = set(objects.synonyms.values())
    assert len(categories) == 80 and {"person", "hot dog", "teddy bear", "dining table", "toothbrush"} <= categories
    assert objects.synonyms["puppy"] == "dog" and objects.synonyms["sofa"] == "couch"


@pytest.mark.parametrize(("caption", "mentions"), [
    # plurals (regular, -es, -ves, -ies, irregular), two-word phrases, "baby" + animal is the animal
    ("Two women and a baby elephant near some hot dogs.",
     [("woman", "person"), ("elephant", "elephant"), ("hot dog", "hot dog")]),
    ("Buses, knives, ponies, ties and wine glasses.",
     [("bus", "bus"), ("knife", "knife"), ("pony", "horse"), ("tie", "tie"), ("wine glass", "wine glass")]),
    ("A teddy bear on the toilet seat.", [("teddy bear", "teddy bear"), ("toilet", "toilet")]),
    ("The seat of the toilet.", [("toilet", "toilet")]),  # "seat" (chair) dropped when "toilet" is there
    ("A passenger train and a bow tie.", [("train", "train"), ("tie", "tie")]),  # no person in either
    ("Children feed the geese.", [("children", "person"), ("goose", "bird")]),
    ("A hot-dog stand and a dog's bowl.", [("dog", "dog"), ("bowl", "bowl")]),  # hyphenated word kept whole
    # The released list's " motor bike" keeps a leading space: the phrase is merged but never counts.
    ("A man on a motor bike.", [("man", "person")]),
    ("An empty street.", []),
])
def test_mentions_singularise_and_merge_phrases(objects, caption, mentions):
    assert objects.mentions(caption) == mentions


def test_chair_scores_by_hand(objects):
    """Image A has a person and a dog; image B a dining table and a teddy bear.

    "A man and his dogs on a couch with a cat." (A): man (person), dog, couch, cat -> 4 mentions, couch and cat
    hallucinated. "A teddy bear on a table." (B): teddy bear, table (dining table) -> 2 mentions, none
    hallucinated. "A person." (A): 1 mention. CHAIRs = 1/3 captions = 33.33 %, CHAIRi = 2/7 mentions = 28.57 %.
    """
    truth_a, truth_b = {"person", "dog"}, {"dining table", "teddy bear"}
    predictions = ["A man and his dogs on a couch with a cat.", "A teddy bear on a table.", "A person."]
    summary, per_item = chair_scores(objects, predictions, [truth_a, truth_b, truth_a])
    assert summary["score"] == summary["chair_s"] == pytest.approx(100 / 3)
    assert summary["chair_i"] == pytest.approx(200 / 7)
    assert (summary["mentions"], summary["hallucinated_mentions"], summary["hallucinated_captions"]) == (7, 2, 1)
    assert per_item[0] == {"hallucinated": ["couch", "cat"], "mentioned": ["person", "dog", "couch", "cat"]}
    assert per_item[1]["hallucinated"] == [] and per_item[2]["mentioned"] == ["person"]


def test_ground_truth_is_instances_plus_reference_captions(benchmark_files):
    """conftest.write_chair: image 42 has person + dog instances ("A man walks his dog." adds nothing new);
    image 99 has a dining table, and its caption "Two teddy bears sit at a table." adds the teddy bear."""
    data_dir, images, _ = benchmark_files("chair")
    data = read_benchmark("chair", data_dir, images, ["en"], "test")
    assert [item.key for item in data.items] == ["42", "99"]  # the Karpathy test split, not its train image
    assert data.items[0].references == ("dog", "person")
    assert data.items[1].references == ("dining table", "teddy bear")
    assert data.items[0].prompt == "Caption in English: " and data.items[0].images[0].parent.name == "val2014"
    everything = read_benchmark("chair", data_dir, images, ["en"], "val2014")  # every image of the instances file
    assert [item.key for item in everything.items] == ["42", "99"]


def test_chair_metric_through_score_items(benchmark_files):
    from model.evaluate.metrics import score_items

    data_dir, images, _ = benchmark_files("chair")
    data = read_benchmark("chair", data_dir, images, ["en"], "test")
    summary, per_item = score_items("chair", [i.references for i in data.items],
                                    ["A man with a frisbee.", "A teddy bear."], "en")
    # frisbee is hallucinated on image 42: 1 of 2 captions, 1 of 3 mentions
    assert summary["score"] == pytest.approx(50.0) and summary["chair_i"] == pytest.approx(100 / 3)
    assert per_item[0]["hallucinated"] == ["frisbee"]


def test_an_unknown_category_or_annotation_names_file_and_field(benchmark_files):
    data_dir, images, _ = benchmark_files("chair")
    path = data_dir / "annotations" / "instances_val2014.json"
    instances = json.loads(path.read_text())
    instances["categories"][1]["name"] = "hound"
    path.write_text(json.dumps(instances))
    with pytest.raises(BenchmarkFormatError, match=r"instances_val2014.json, category 1: field 'name' 'hound'"):
        read_benchmark("chair", data_dir, images, ["en"], "test")
    instances["categories"][1]["name"] = "dog"
    instances["annotations"][0]["category_id"] = 999
    path.write_text(json.dumps(instances))
    with pytest.raises(BenchmarkFormatError, match=r"annotation 0: field 'category_id' 999"):
        read_benchmark("chair", data_dir, images, ["en"], "test")
    instances["annotations"][0]["category_id"] = 1
    path.write_text(json.dumps(instances))
    (data_dir / "annotations" / "captions_val2014.json").unlink()
    with pytest.raises(FileNotFoundError, match="captions_val2014.json"):
        read_benchmark("chair", data_dir, images, ["en"], "test")


def test_an_image_without_ground_truth_names_the_file_and_the_image(benchmark_files):
    """Image 99 has no caption in captions_val2014.json: it is not in the folder's files, and an empty ground
    truth would count every object of its caption as hallucinated."""
    data_dir, images, _ = benchmark_files("chair")
    path = data_dir / "annotations" / "captions_val2014.json"
    captions = json.loads(path.read_text())
    captions["annotations"] = [a for a in captions["annotations"] if a["image_id"] != 99]
    path.write_text(json.dumps(captions))
    for split in ("test", "val2014"):
        with pytest.raises(BenchmarkFormatError,
                           match=r"captions_val2014\.json: field 'annotations\[\]\.image_id' never names image 99,"):
            read_benchmark("chair", data_dir, images, ["en"], split)


def test_a_karpathy_image_without_cocoid_is_a_bad_record(benchmark_files):
    """Karpathy's ``imgid`` is the image's position in dataset_coco.json, not a COCO id: CHAIR needs ``cocoid``."""
    data_dir, images, _ = benchmark_files("chair")
    path = data_dir / "dataset_coco.json"
    karpathy = json.loads(path.read_text())
    del karpathy["images"][2]["cocoid"]  # image 99, which would otherwise be looked up as imgid 2
    karpathy["images"][2]["imgid"] = 2
    path.write_text(json.dumps(karpathy))
    with pytest.raises(BenchmarkFormatError, match=r"dataset_coco\.json, image 2: field 'cocoid' missing"):
        read_benchmark("chair", data_dir, images, ["en"], "test")
    data = read_benchmark("chair", data_dir, images, ["en"], "test", skip_missing=True)
    assert [item.key for item in data.items] == ["42"] and "'cocoid'" in data.skipped[0]["reason"]
    assert [item.key for item in read_benchmark("coco", data_dir, images, ["en"], "test").items] == ["42", "2"]

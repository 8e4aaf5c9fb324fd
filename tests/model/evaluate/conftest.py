"""Fixtures for the evaluation tests: each benchmark's files in its official layout (written here, with
small real JPEG/PNG images), and the tiny model trained for a few steps, as a checkpoint and as an export."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CONCEPT = unicodedata.normalize("NFC", "63-Kafé")
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}


def write_image(path: Path, colour: str = "red") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), COLOURS[colour]).save(path)
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_xm3600(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    rows = []
    for key, colour in (("00a1b2c3d4e5f601", "red"), ("00a1b2c3d4e5f602", "blue")):
        write_image(images / f"{key}.jpg", colour)
        rows.append(
            {
                "image/key": key,
                "image/locale": "en",
                "en": {
                    "caption": [f"a {colour} square", f"a {colour} shape"],
                    "caption/tokenized": [f"a {colour} square"],
                },
                "de": {"caption": ["ein Quadrat", "eine Form"]},
                "zh": {"caption": ["一个正方形"]},
                "ja": {"caption": ["四角い形が写っている"]},
                "th": {"caption": ["สี่เหลี่ยมสีแดง"]},
            }
        )
    write_jsonl(root / "captions.jsonl", rows)
    return root, images


def write_xgqa(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    write_image(images / "n100.jpg", "red")
    write_image(images / "n200.jpg", "blue")
    questions = {
        "en": {"1001": ("n100", "What colour is the square?", "red"), "1002": ("n200", "Is it blue?", "yes")},
        "de": {"1001": ("n100", "Welche Farbe hat das Quadrat?", "red"), "1002": ("n200", "Ist es blau?", "yes")},
    }
    for lang, qs in questions.items():
        data = {
            qid: {
                "semantic": [],
                "entailed": [],
                "equivalent": [qid],
                "question": q,
                "imageId": img,
                "isBalanced": True,
                "groups": {"global": None, "local": "x"},
                "answer": a,
                "semanticStr": "",
                "annotations": {},
                "types": {},
                "fullAnswer": a,
            }
            for qid, (img, q, a) in qs.items()
        }
        path = root / lang / "test.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return root, images


def write_maxm(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    write_image(images / "00b1.jpg", "green")
    for lang, question, answers in (("en", "What colour is it?", ["green"]), ("iw", "איזה צבע?", ["ירוק"])):
        data = {
            "info": {"version": "v1"},
            "annotations": [
                {
                    "image_id": "00b1",
                    "image_url": "http://example.invalid/00b1.jpg",
                    "qa_pairs": [
                        {
                            "question_id": f"{lang}-q1",
                            "question": question,
                            "answers": answers,
                            "processed_answers": answers,
                            "is_collection": False,
                            "method": "translated",
                        }
                    ],
                }
            ],
        }
        (root / f"maxm_v1_{lang}.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return root, images


def write_xvnli(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    write_image(images / "1000092795.jpg", "red")
    for lang, h in (("en", "The shape is red."), ("fr", "La forme est rouge.")):
        rows = [
            {
                "Flikr30kID": "1000092795",
                "pairID": f"{lang}-1",
                "gold_label": "entailment",
                "sentence1": "",
                "sentence2": h,
            },
            {
                "Flikr30kID": "1000092795",
                "pairID": f"{lang}-2",
                "gold_label": "contradiction",
                "sentence1": "",
                "sentence2": h,
            },
            {
                "Flikr30kID": "1000092795",
                "pairID": f"{lang}-3",
                "gold_label": "neutral",
                "sentence1": "",
                "sentence2": h,
            },
        ]
        write_jsonl(root / "annotations" / lang / "test.jsonl", rows)
    return root, images


def write_marvl(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    # The concept folder is stored decomposed (NFKD) on disk; the record spells it composed (NFC).
    folder = images / "id" / "images" / unicodedata.normalize("NFKD", CONCEPT)
    write_image(folder / "63-1.jpg", "red")
    write_image(folder / "63-2.jpg", "blue")
    write_jsonl(
        root / "marvl-id.jsonl",
        [
            {
                "concept": CONCEPT,
                "language": "id",
                "caption": "Kedua gambar berwarna merah.",
                "left_img": "63-1.jpg",
                "right_img": "63-2.jpg",
                "label": False,
                "chapter": "Food",
                "id": "id-1",
            },
            {
                "concept": CONCEPT,
                "language": "id",
                "caption": "Satu gambar berwarna biru.",
                "left_img": "63-1.jpg",
                "right_img": "63-2.jpg",
                "label": True,
                "chapter": "Food",
                "id": "id-2",
            },
        ],
    )
    write_image(images / "test1-0-1-img0.png", "red")
    write_image(images / "test1-0-1-img1.png", "red")
    write_jsonl(
        root / "nlvr2" / "test1.json",
        [
            {"identifier": "test1-0-1-0", "sentence": "Both images are red.", "label": "True", "synset": "x"},
        ],
    )
    return root, images


def write_xflickrco(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    write_image(images / "flickr30k" / "1007129816.jpg", "blue")
    for lang, sentences in (("en", ["a blue square", "a square"]), ("ja", ["青い四角"])):
        # English: Flickr30k's test file, as the reference scores it (not annotations/en/test.jsonl).
        path = root / "flickr30k" / "annotations" / "test_ann.jsonl" if lang == "en" else None
        write_jsonl(
            path or root / "annotations" / lang / "test.jsonl",
            [
                {"id": f"{lang}-1", "img_path": "flickr30k/1007129816.jpg", "sentences": sentences},
            ],
        )
    return root, images


def write_pope(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    write_image(images / "COCO_val2014_000000310196.jpg", "green")
    for subset in ("random", "adversarial"):
        write_jsonl(
            root / f"coco_pope_{subset}.json",
            [
                {
                    "question_id": 1,
                    "image": "COCO_val2014_000000310196.jpg",
                    "text": "Is there a square in the image?",
                    "label": "yes",
                },
                {
                    "question_id": 2,
                    "image": "COCO_val2014_000000310196.jpg",
                    "text": "Is there a dog in the image?",
                    "label": "no",
                },
            ],
        )
    return root, images


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def karpathy_image(cocoid: int, split: str, captions: list[str], folder: str = "val2014") -> dict:
    """One ``images[]`` record of the Karpathy split file ``dataset_coco.json``, as published."""
    name = f"COCO_{folder}_{cocoid:012d}.jpg"
    sentences = [{"tokens": c.lower().rstrip(".").split(), "raw": c, "imgid": cocoid, "sentid": cocoid * 10 + i}
                 for i, c in enumerate(captions)]
    return {"filepath": folder, "sentids": [s["sentid"] for s in sentences], "filename": name, "imgid": cocoid,
            "split": split, "sentences": sentences, "cocoid": cocoid}


def write_coco(root: Path) -> tuple[Path, Path]:
    """``dataset_coco.json`` with two test images (one of them missing from train) and one train image."""
    images = root / "images"
    records = [karpathy_image(42, "test", ["A red square.", "A red box on white."]),
               karpathy_image(73, "train", ["A blue square."], folder="train2014"),
               karpathy_image(99, "test", ["A green square on a table."])]
    for record, colour in zip(records, ("red", "blue", "green")):
        write_image(images / record["filepath"] / record["filename"], colour)
    write_json(root / "dataset_coco.json", {"images": records, "dataset": "coco"})
    return root, images


# Ten human answers per question, as VQAv2 publishes them (answer, answer_confidence, answer_id).
VQAV2_ANSWERS = {
    5001: ["red"] * 3 + ["orange"] * 7,
    5002: ["2"] * 10,
    5003: ["square"] * 2 + ["box"] * 8,
}


def write_vqav2(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    write_image(images / "val2014" / "COCO_val2014_000000000042.jpg", "red")
    write_image(images / "val2014" / "COCO_val2014_000000000099.jpg", "green")
    questions = [{"image_id": 42, "question": "What colour is it?", "question_id": 5001},
                 {"image_id": 42, "question": "How many squares?", "question_id": 5002},
                 {"image_id": 99, "question": "What is the shape?", "question_id": 5003}]
    annotations = [{"question_type": "what", "multiple_choice_answer": max(set(a), key=a.count), "question_id": q,
                    "answer_type": "other", "image_id": 42 if q < 5003 else 99,
                    "answers": [{"answer": t, "answer_confidence": "yes", "answer_id": i + 1} for i, t in enumerate(a)]}
                   for q, a in VQAV2_ANSWERS.items()]
    info = {"info": {"description": "VQA v2"}, "license": {"name": "CC BY 4.0"}, "data_type": "mscoco"}
    write_json(root / "v2_OpenEnded_mscoco_val2014_questions.json",
               {**info, "task_type": "Open-Ended", "data_subtype": "val2014", "questions": questions})
    write_json(root / "v2_mscoco_val2014_annotations.json", {**info, "data_subtype": "val2014",
                                                             "annotations": annotations})
    return root, images


# COCO's category ids for the categories the CHAIR files use.
COCO_CATEGORIES = {1: "person", 18: "dog", 62: "chair", 67: "dining table", 88: "teddy bear"}


def write_chair(root: Path) -> tuple[Path, Path]:
    """The Karpathy split file (two test images), ``annotations/instances_val2014.json`` and
    ``annotations/captions_val2014.json``: image 42 has a person and a dog; image 99 a dining table, and its
    reference captions add a teddy bear."""
    _, images = write_coco(root)
    instances = {
        "info": {"year": 2014}, "licenses": [],
        "images": [{"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "height": 30, "width": 40} for i in (42, 99)],
        "annotations": [{"id": n, "image_id": image, "category_id": cat, "bbox": [0, 0, 1, 1], "area": 1.0,
                         "iscrowd": 0, "segmentation": []}
                        for n, (image, cat) in enumerate([(42, 1), (42, 18), (42, 18), (99, 67)])],
        "categories": [{"supercategory": "x", "id": i, "name": name} for i, name in COCO_CATEGORIES.items()],
    }
    captions = {"images": instances["images"],
                "annotations": [{"image_id": 42, "id": 1, "caption": "A man walks his dog."},
                                {"image_id": 99, "id": 2, "caption": "Two teddy bears sit at a table."}]}
    write_json(root / "annotations" / "instances_val2014.json", instances)
    write_json(root / "annotations" / "captions_val2014.json", captions)
    return root, images


WRITERS = {
    "xm3600": (write_xm3600, ["en", "de", "zh", "ja", "th"]),
    "xgqa": (write_xgqa, ["en", "de"]),
    "maxm": (write_maxm, ["en", "iw"]),
    "xvnli": (write_xvnli, ["en", "fr"]),
    "marvl": (write_marvl, ["en", "id"]),
    "xflickrco": (write_xflickrco, ["en", "ja"]),
    "pope": (write_pope, ["random", "adversarial"]),
    "coco": (write_coco, ["en"]),
    "vqav2": (write_vqav2, ["en"]),
    "chair": (write_chair, ["en"]),
}


@pytest.fixture()
def benchmark_files(tmp_path):
    """``make(name) -> (data_dir, images_dir, languages)`` in a fresh folder."""

    def make(name: str):
        writer, languages = WRITERS[name]
        data, images = writer(tmp_path / name)
        return data, images, languages

    return make


@pytest.fixture(scope="session")
def tiny_run(tiny_dirs, demo_output, tmp_path_factory) -> dict[str, Path]:
    """The tiny mT5 model trained 2 steps: its checkpoint and its export."""
    import torch

    from model.config import load_config
    from model.export import export_checkpoint
    from model.train import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-eval-run")
    overrides = {
        "model": {"blip2": str(tiny_dirs["blip2"]), "llm": str(tiny_dirs["mt5"])},
        "data": {"manifest": str(demo_output), "num_workers": 0},
        "train": {"output_dir": str(root / "run"), "max_steps": 2, "eval_every": 0, "save_every": 0},
        "optim": {"warmup_steps": 1},
    }
    cfg = load_config(REPO / "model" / "demo" / "train_tiny.yaml", overrides)
    checkpoint = train(cfg).checkpoint
    return {"checkpoint": checkpoint, "export": export_checkpoint(checkpoint, root / "export"), "run": root / "run"}

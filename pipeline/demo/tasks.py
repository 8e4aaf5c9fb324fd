"""Small files in the official formats of every other source of the mBLIP mix, from the demo scenes.

``generate_task_demo_data(root)`` runs after ``pipeline.demo.data.generate_demo_data(root)`` and
reads the scenes' VQAv2 answers (colour and shape of each image) to write, grounded in the pixels:

    ROOT/aokvqa/aokvqa_v1p0_train.json           A-OKVQA (COCO 2017 ids; the files are 2014-named)
    ROOT/llava/conversation_58k.json, detail_23k.json   LLaVA-Instruct (2017 file names)
    ROOT/imagenet/train/<wnid>/<wnid>_<k>.JPEG   ImageNet layout, one synset per colour+shape
    ROOT/imagenet/classnames.json, babel_imagenet-298.json   class names: English; DE, FR and LA (Latin: no
                                                 project language, reported in the card) as Babel-ImageNet keys
    ROOT/byo/captions.jsonl                      bring-your-own English captions (JSON Lines)
    ROOT/released/task_mix_v2_mt.json            the released mBLIP format (context, label, image_id)

A few records in each are bad on purpose (missing image, empty text, a conversation answer over the
limit), so the demo shows quarantine at work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.demo.data import COLOURS, SHAPES, demo_paths, image_file_name

COLOUR_NAMES = {
    "de": {"red": "rot", "green": "grün", "blue": "blau", "yellow": "gelb", "purple": "lila", "orange": "orange"},
    "fr": {"red": "rouge", "green": "vert", "blue": "bleu", "yellow": "jaune", "purple": "violet", "orange": "orange"},
}
SHAPE_NAMES = {
    "de": {"circle": "Kreis", "square": "Quadrat", "triangle": "Dreieck"},
    "fr": {"circle": "cercle", "square": "carré", "triangle": "triangle"},
}
# Latin: a Babel-ImageNet language outside the project's 96 (the label file holds 298)
LATIN = ({"red": "ruber", "green": "viridis", "blue": "caeruleus", "yellow": "flavus", "purple": "purpureus",
          "orange": "aurantius"}, {"circle": "circulus", "square": "quadratum", "triangle": "triangulum"})


def _scenes(root: Path) -> dict[int, tuple[str, str]]:
    """image id -> (colour, shape), from the demo's VQAv2 annotations (question 0: colour, 1: shape)."""
    annotations = json.loads(demo_paths(root).annotations.read_text())["annotations"]
    answers = {a["question_id"]: a["multiple_choice_answer"] for a in annotations}
    ids = sorted({a["image_id"] for a in annotations})
    return {i: (answers[i * 1000], answers[i * 1000 + 1]) for i in ids}


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=None))
    return path


def _write_aokvqa(root: Path, scenes: dict[int, tuple[str, str]], out: dict[str, Path]) -> None:

    aokvqa = []
    for i, (colour, shape) in scenes.items():
        others = [c for c in COLOURS if c != colour][:3]
        choices = [colour, *others]
        aokvqa.append(
            {
                "split": "train",
                "image_id": i,
                "question_id": f"demo{i:05d}",
                "question": f"Which colour is the {shape}?",
                "choices": choices,
                "correct_choice_idx": 0,
                "direct_answers": [colour] * 10,
                "difficult_direct_answer": False,
                "rationales": [
                    f"The {shape} in the image is filled with {colour}.",
                    f"Only one {shape} is drawn and it is {colour}.",
                    f"The colour of the shape is {colour}.",
                ],
            }
        )
    aokvqa.append({**aokvqa[0], "question_id": "demo-missing-image", "image_id": 999_999})  # quarantined
    out["aokvqa"] = _write(root / "aokvqa" / "aokvqa_v1p0_train.json", aokvqa)


def _write_llava(root: Path, scenes: dict[int, tuple[str, str]], out: dict[str, Path]) -> None:
    conversation, detail = [], []
    for i, (colour, shape) in scenes.items():
        name = f"{i:012d}.jpg"  # COCO 2017 naming, as LLaVA gives it; the files are COCO_train2014_...
        conversation.append(
            {
                "id": f"{i:012d}",
                "image": name,
                "conversations": [
                    {"from": "human", "value": "What shape is in the image?\n<image>"},
                    {"from": "gpt", "value": f"The image shows a {shape}."},
                    {"from": "human", "value": "And what colour is it?"},
                    {"from": "gpt", "value": f"It is {colour}. The background is light."},
                ],
            }
        )
        detail.append(
            {
                "id": f"{i:012d}",
                "image": name,
                "conversations": [
                    {"from": "human", "value": "<image>\nDescribe the image in detail."},
                    {"from": "gpt", "value": f"A single {colour} {shape} is drawn on a plain, light background."},
                ],
            }
        )
    first = next(iter(scenes))
    conversation.append(  # a conversation turn over the reference's 3 sentences (detail descriptions: no limit)
        {
            "id": "too-long",
            "image": f"{first:012d}.jpg",
            "conversations": [
                {"from": "human", "value": "Describe it."},
                {"from": "gpt", "value": "One. Two. Three. Four."},
            ],
        }
    )
    out["llava_conversation"] = _write(root / "llava" / "conversation_58k.json", conversation)
    out["llava_detail"] = _write(root / "llava" / "detail_23k.json", detail)


def _write_imagenet(root: Path, scenes: dict[int, tuple[str, str]], out: dict[str, Path]) -> None:
    classes = [(c, s) for c in COLOURS for s in SHAPES]
    wnids = [f"n{9000000 + k:08d}" for k in range(len(classes))]
    train = root / "imagenet" / "train"
    scene_images = demo_paths(root).images / "train2014"
    counts = dict.fromkeys(range(len(classes)), 0)
    for i, scene in scenes.items():
        k = classes.index(scene)
        folder = train / wnids[k]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(scene_images / image_file_name(i), folder / f"{wnids[k]}_{counts[k]}.JPEG")
        counts[k] += 1
    for k, wnid in enumerate(wnids):
        (train / wnid).mkdir(parents=True, exist_ok=True)  # a class without images is quarantined
    out["imagenet_classes"] = _write(root / "imagenet" / "classnames.json", [f"{c} {s}" for c, s in classes])
    # keys as the published babel_imagenet-298.json spells them: upper-case codes
    labels = {
        lang.upper(): [list(range(len(classes))),
                       [f"{SHAPE_NAMES[lang][s]} ({COLOUR_NAMES[lang][c]})" for c, s in classes]]
        for lang in ("de", "fr")
    }
    labels["LA"] = [list(range(len(classes))), [f"{LATIN[1][s]} {LATIN[0][c]}" for c, s in classes]]
    out["imagenet_labels"] = _write(root / "imagenet" / "babel_imagenet-298.json", labels)
    out["imagenet_images"] = train


def _write_byo(root: Path, scenes: dict[int, tuple[str, str]], out: dict[str, Path]) -> None:
    lines = [
        json.dumps(
            {"uid": f"byo-{i}", "file": f"train2014/{image_file_name(i)}", "text": f"My photo of a {colour} {shape}."}
        )
        for i, (colour, shape) in scenes.items()
    ]
    first = next(iter(scenes))
    lines.append(json.dumps({"uid": "byo-empty", "file": f"train2014/{image_file_name(first)}", "text": ""}))
    byo = root / "byo" / "captions.jsonl"
    byo.parent.mkdir(parents=True, exist_ok=True)
    byo.write_text("\n".join(lines) + "\n")
    out["byo"] = byo


def _write_released(root: Path, scenes: dict[int, tuple[str, str]], out: dict[str, Path]) -> None:
    released = []
    for i, (colour, shape) in scenes.items():
        rel = f"train2014/{image_file_name(i)}"
        released.append(
            {
                "context": "Beschreibe das Bild kurz auf Deutsch.",
                "label": f"Ein {COLOUR_NAMES['de'][colour]}es {SHAPE_NAMES['de'][shape]} auf hellem Grund.",
                "image_id": rel,
            }
        )
        released.append(
            {
                "context": "Caption the image in English.",
                "label": f"A {colour} {shape} on a light background.",
                "image_id": rel,
            }
        )
    released.append({"context": "Caption the image.", "label": "", "image_id": "x.jpg"})  # quarantined
    out["released"] = _write(root / "released" / "task_mix_v2_mt.json", released)


def generate_task_demo_data(root: str | Path) -> dict[str, Path]:
    root = Path(root)
    scenes = _scenes(root)
    out: dict[str, Path] = {}
    _write_aokvqa(root, scenes, out)
    _write_llava(root, scenes, out)
    _write_imagenet(root, scenes, out)
    _write_byo(root, scenes, out)
    _write_released(root, scenes, out)
    return out

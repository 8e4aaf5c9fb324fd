"""A small, deterministic English dataset with real image files, written in the official formats.

Images are drawn scenes of one coloured shape on a tinted background, so captions and VQA answers
about colour and shape are grounded in the pixels (the trainer's demo evaluation relies on this).
Files are written exactly as the real sources publish them, so the demo goes through the same
readers as real data:

    OUT/images/train2014/COCO_train2014_000000000001.jpg
    OUT/annotations/captions_train2014.json                  (COCO captions)
    OUT/vqa/v2_OpenEnded_mscoco_train2014_questions.json     (VQAv2 questions)
    OUT/vqa/v2_mscoco_train2014_annotations.json             (VQAv2 annotations)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 210, 20),
    "purple": (130, 40, 170),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")
SUBTYPE = "train2014"
IMAGE_SIZE = 96

CAPTION_TEMPLATES = (
    "A {c} {s} on a plain background.",
    "There is a {c} {s} in the picture.",
    "A simple drawing of a {c} {s}.",
    "The image shows one {c} {s}.",
    "A {size} {c} {s} near the {where} of the image.",
)
LICENSES = [
    {"id": 1, "name": "CC0 1.0 (generated demo images)", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
]


@dataclass(frozen=True)
class DemoPaths:
    root: Path
    images: Path
    captions: Path
    questions: Path
    annotations: Path


def demo_paths(root: str | Path) -> DemoPaths:
    root = Path(root)
    return DemoPaths(
        root=root,
        images=root / "images",
        captions=root / "annotations" / f"captions_{SUBTYPE}.json",
        questions=root / "vqa" / f"v2_OpenEnded_mscoco_{SUBTYPE}_questions.json",
        annotations=root / "vqa" / f"v2_mscoco_{SUBTYPE}_annotations.json",
    )


def image_file_name(image_id: int) -> str:
    return f"COCO_{SUBTYPE}_{image_id:012d}.jpg"


def draw_scene(colour: str, shape: str, rng: random.Random, size: int = IMAGE_SIZE):
    """One shape of the given colour, random size and position, on a light random background."""
    from PIL import Image, ImageDraw

    bg = tuple(rng.randint(200, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    extent = rng.randint(size // 3, int(size * 0.7))
    x0 = rng.randint(2, size - extent - 2)
    y0 = rng.randint(2, size - extent - 2)
    box = (x0, y0, x0 + extent, y0 + extent)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(x0 + extent / 2, y0), (x0, y0 + extent), (x0 + extent, y0 + extent)], fill=fill)
    where = ("top" if y0 + extent / 2 < size / 2 else "bottom") + (" left" if x0 + extent / 2 < size / 2 else " right")
    return img, ("large" if extent > size / 2 else "small"), where


def _answers(answer: str, rng: random.Random, alternatives: list[str]) -> list[dict]:
    """Ten human-style answers: mostly the right one, occasionally a disagreeing annotator."""
    out = []
    for k in range(10):
        a = answer if rng.random() > 0.1 else rng.choice(alternatives)
        out.append({"answer": a, "answer_confidence": "yes" if a == answer else "maybe", "answer_id": k + 1})
    return out


def generate_demo_data(root: str | Path, n_images: int = 200, seed: int = 0) -> DemoPaths:
    """Write ``n_images`` scenes with 5 captions and 3 questions each; deterministic for a seed."""
    paths = demo_paths(root)
    image_dir = paths.images / SUBTYPE
    image_dir.mkdir(parents=True, exist_ok=True)
    paths.captions.parent.mkdir(parents=True, exist_ok=True)
    paths.questions.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    images, captions, questions, annotations = [], [], [], []
    colours = list(COLOURS)
    for image_id in range(1, n_images + 1):
        colour, shape = rng.choice(colours), rng.choice(SHAPES)
        img, size_word, where = draw_scene(colour, shape, rng)
        name = image_file_name(image_id)
        img.save(image_dir / name, quality=90)
        images.append({"id": image_id, "file_name": name, "width": IMAGE_SIZE, "height": IMAGE_SIZE, "license": 1})
        for k, template in enumerate(CAPTION_TEMPLATES):
            captions.append(
                {"id": image_id * 10 + k, "image_id": image_id,
                 "caption": template.format(c=colour, s=shape, size=size_word, where=where)}
            )
        other = rng.choice([c for c in colours if c != colour])
        asked = rng.choice([colour, other])
        qa = [
            (f"What color is the {shape}?", colour, "other", colours),
            ("What shape is shown in the image?", shape, "other", list(SHAPES)),
            (f"Is the {shape} {asked}?", "yes" if asked == colour else "no", "yes/no", ["yes", "no"]),
        ]
        for k, (question, answer, answer_type, alternatives) in enumerate(qa):
            qid = image_id * 1000 + k
            questions.append({"image_id": image_id, "question": question, "question_id": qid})
            annotations.append(
                {"question_id": qid, "image_id": image_id, "question_type": " ".join(question.split()[:2]).lower(),
                 "answer_type": answer_type, "multiple_choice_answer": answer,
                 "answers": _answers(answer, rng, alternatives)}
            )
    info = {"description": "mblip-pipeline demo scenes", "version": "1.0", "year": 2026}
    _write_json(paths.captions, {"info": info, "licenses": LICENSES, "images": images, "annotations": captions})
    _write_json(
        paths.questions,
        {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": SUBTYPE,
         "license": LICENSES[0], "questions": questions},
    )
    _write_json(
        paths.annotations,
        {"info": info, "data_type": "mscoco", "data_subtype": SUBTYPE, "license": LICENSES[0],
         "annotations": annotations},
    )
    return paths


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    tmp.replace(path)

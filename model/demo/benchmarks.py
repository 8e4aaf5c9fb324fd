"""Small benchmark folders in the official formats, and placeholder images for published annotation files.

python -m model.demo.benchmarks samples runs/eval_samples
    # writes runs/eval_samples/<benchmark>/{data,images} for every benchmark (a few items per language,
    # coloured-shape images), so `mblip eval` can be run end to end without the real data
python -m model.demo.benchmarks placeholders xgqa --data DATA/xgqa --split train_48 --out runs/xgqa_images
    # one grey-scale placeholder image for every image a benchmark's files reference (the
    # published annotation files without their images: checks the reading and scoring path only)
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from pathlib import Path

from model.evaluate.benchmarks import get_benchmark, resolve_languages
from model.evaluate.readers import read_benchmark

SHAPES = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60)}


def _image(path: Path, colour: str, index: int = 0) -> None:
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (64, 64), (245, 245, 245))
    box = (8 + index % 3 * 4, 8, 56, 56 - index % 3 * 4)
    ImageDraw.Draw(image).rectangle(box, fill=SHAPES[colour])
    image.save(path)


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


def _samples_xm3600(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    rows = []
    for i, c in enumerate(colours):
        key = f"{i:016x}"
        _image(images / f"{key}.jpg", c, i)
        rows.append(
            {"image/key": key, **{lang: {"caption": [f"a {c} square", f"{c} square"]} for lang in langs}}
        )
    _jsonl(data / "captions.jsonl", rows)


def _samples_xflickrco(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    for i, c in enumerate(colours):
        _image(images / "flickr30k" / f"{i}.jpg", c, i)
    for lang in langs:
        # English is Flickr30k's own test file, as in the reference (IGLUE datasets/flickr30k/annotations).
        path = data / "annotations" / lang / "test.jsonl"
        if lang == "en":
            path = data / "flickr30k" / "annotations" / "test_ann.jsonl"
        _jsonl(
            path,
            [
                {"id": i, "img_path": f"flickr30k/{i}.jpg", "sentences": [f"a {c} square"]}
                for i, c in enumerate(colours)
            ],
        )


def _samples_xgqa(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    for i, c in enumerate(colours):
        _image(images / f"n{i}.jpg", c, i)
    for lang in langs:
        _json(
            data / lang / "test.json",
            {
                str(100 + i): {
                    "imageId": f"n{i}",
                    "question": "What colour is the square?",
                    "answer": c,
                    "semantic": [],
                }
                for i, c in enumerate(colours)
            },
        )


def _samples_maxm(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    for i, c in enumerate(colours):
        _image(images / f"{i:016x}.jpg", c, i)
    for lang in langs:
        anns = [
            {
                "image_id": f"{i:016x}",
                "qa_pairs": [
                    {"question_id": f"{lang}{i}", "question": "What colour is it?", "processed_answers": [c]}
                ],
            }
            for i, c in enumerate(colours)
        ]
        _json(data / f"maxm_v1_{lang}.json", {"annotations": anns})


def _samples_xvnli(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    for i, c in enumerate(colours):
        _image(images / f"{1000 + i}.jpg", c, i)
    labels = ("entailment", "neutral", "contradiction")
    for lang in langs:
        _jsonl(
            data / "annotations" / lang / "test.jsonl",
            [
                {
                    "Flikr30kID": str(1000 + i),
                    "pairID": f"{lang}{i}",
                    "gold_label": labels[i],
                    "sentence2": f"The square is {c}.",
                }
                for i, c in enumerate(colours)
            ],
        )


def _samples_marvl(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    for lang in langs[1:]:
        concept = unicodedata.normalize("NFKD", "1-Café")
        for i, c in enumerate(colours):
            _image(images / lang / "images" / concept / f"{i}.jpg", c, i)
        _jsonl(
            data / f"marvl-{lang}.jsonl",
            [
                {
                    "concept": "1-Café",
                    "language": lang,
                    "caption": "Both squares have one colour.",
                    "left_img": f"{i}.jpg",
                    "right_img": f"{(i + 1) % 3}.jpg",
                    "label": i % 2 == 0,
                    "id": f"{lang}-{i}",
                }
                for i in range(3)
            ],
        )
    for i, c in enumerate(colours):
        for side in (0, 1):
            _image(images / f"test1-{i}-0-img{side}.png", colours[(i + side) % 3], i)
    _jsonl(
        data / "nlvr2" / "test1.json",
        [
            {
                "identifier": f"test1-{i}-0-0",
                "sentence": "Both squares are red.",
                "label": "False" if i else "True",
            }
            for i in range(3)
        ],
    )


def _samples_pope(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    for i, c in enumerate(colours):
        _image(images / f"COCO_val2014_{i:012d}.jpg", c, i)
    for subset in langs:
        _jsonl(
            data / f"coco_pope_{subset}.json",
            [
                {
                    "question_id": i,
                    "image": f"COCO_val2014_{i:012d}.jpg",
                    "text": f"Is there a {c} square in the image?",
                    "label": "yes" if i % 2 == 0 else "no",
                }
                for i, c in enumerate(colours)
            ],
        )


def _karpathy(data: Path, images: Path, colours: list[str]) -> list[dict]:
    """``dataset_coco.json`` (Karpathy split file) with every image in the test split, in ``val2014/``."""
    records = []
    for i, c in enumerate(colours, start=1):
        name = f"COCO_val2014_{i:012d}.jpg"
        _image(images / "val2014" / name, c, i)
        sentences = [{"raw": f"A {c} kite in the sky.", "tokens": ["a", c, "kite"], "imgid": i, "sentid": i}]
        records.append({"filepath": "val2014", "filename": name, "imgid": i, "cocoid": i, "split": "test",
                        "sentids": [i], "sentences": sentences})
    _json(data / "dataset_coco.json", {"images": records, "dataset": "coco"})
    return records


def _samples_coco(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    _karpathy(data, images, colours)


def _samples_vqav2(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    for i, c in enumerate(colours, start=1):
        _image(images / "val2014" / f"COCO_val2014_{i:012d}.jpg", c, i)
    questions = [{"image_id": i, "question": "What colour is the square?", "question_id": 100 + i}
                 for i in range(1, len(colours) + 1)]
    annotations = [{"question_id": 100 + i, "image_id": i, "answer_type": "other", "multiple_choice_answer": c,
                    "answers": [{"answer": c, "answer_confidence": "yes", "answer_id": k} for k in range(1, 11)]}
                   for i, c in enumerate(colours, start=1)]
    _json(data / "v2_OpenEnded_mscoco_val2014_questions.json", {"data_subtype": "val2014", "questions": questions})
    _json(data / "v2_mscoco_val2014_annotations.json", {"data_subtype": "val2014", "annotations": annotations})


def _samples_chair(data: Path, images: Path, langs: tuple[str, ...], colours: list[str]) -> None:
    records = _karpathy(data, images, colours)
    image_list = [{"id": r["cocoid"], "file_name": r["filename"], "width": 64, "height": 64} for r in records]
    instances = {"images": image_list, "categories": [{"id": 38, "name": "kite", "supercategory": "sports"}],
                 "annotations": [{"id": r["cocoid"], "image_id": r["cocoid"], "category_id": 38} for r in records]}
    captions = {"images": image_list, "annotations": [{"id": r["cocoid"], "image_id": r["cocoid"],
                                                       "caption": r["sentences"][0]["raw"]} for r in records]}
    _json(data / "annotations" / "instances_val2014.json", instances)
    _json(data / "annotations" / "captions_val2014.json", captions)


SAMPLE_WRITERS = {
    "xm3600": _samples_xm3600,
    "xflickrco": _samples_xflickrco,
    "xgqa": _samples_xgqa,
    "maxm": _samples_maxm,
    "xvnli": _samples_xvnli,
    "marvl": _samples_marvl,
    "pope": _samples_pope,
    "coco": _samples_coco,
    "vqav2": _samples_vqav2,
    "chair": _samples_chair,
}


def write_samples(root: Path) -> dict[str, tuple[Path, Path, tuple[str, ...]]]:
    """Each benchmark's folder layout with 3 items per language; returns {name: (data, images, languages)}."""
    colours = list(SHAPES)
    out = {}
    for name, write in SAMPLE_WRITERS.items():
        data, images = root / name / "data", root / name / "images"
        langs = get_benchmark(name).languages
        write(data, images, langs, colours)
        out[name] = (data, images, langs)
    return out


def write_placeholders(
    benchmark: str, data_dir: Path, images_dir: Path, split: str | None = None, languages: tuple[str, ...] = ()
) -> int:
    """A 64 x 64 placeholder for every image path the benchmark's files reference; returns the count."""
    from PIL import Image

    spec = get_benchmark(benchmark)
    data = read_benchmark(
        benchmark, data_dir, images_dir, resolve_languages(spec, languages), split or spec.split, check_images=False
    )
    paths = sorted({p for item in data.items for p in item.images})
    for i, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (i * 37 % 256, i * 91 % 256, 128)).save(path)
    return len(paths)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("samples")
    p.add_argument("out", type=Path)
    p = sub.add_parser("placeholders")
    p.add_argument("benchmark")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="image folder to fill")
    p.add_argument("--split", default=None)
    p.add_argument("--languages", nargs="*", default=())
    args = parser.parse_args(argv)
    if args.what == "samples":
        for name, (data, images, _) in write_samples(args.out).items():
            print(f"{name}: --data {data} --images {images}")
    else:
        count = write_placeholders(args.benchmark, args.data, args.out, args.split, tuple(args.languages))
        print(f"{count} placeholder images in {args.out}")


if __name__ == "__main__":
    main()

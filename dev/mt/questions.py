"""Parallel VQA questions for the small translator: xGQA (Pfeiffer et al., Findings of ACL 2022).

xGQA ships GQA questions human-translated from English, one official-format JSON file per language
(``train_48.<lang>.json(.gz)``: question id -> ``{"question", "imageId", ...}``), parallel by question id.
``question_pairs`` joins two languages on the id; ``split_by_image`` holds out every question about a
fixed set of images, so validation questions are about images the model never saw questions for.

``write_heldout`` stores the held-out questions in the Multi30k line layout (``val.en.gz``, ``val.de.gz``
plus ``val.ids`` with the question ids), so ``evaluate_directions`` and ``mblip eval-mt --data`` score them
like any other parallel set; the package ships that split in ``pipeline/assets/xgqa-val``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class QuestionPair:
    question_id: str
    image_id: str
    src: str
    tgt: str


def xgqa_path(data_dir: str | Path, lang: str, split: str = "train_48") -> Path:
    data_dir = Path(data_dir)
    for name in (f"{split}.{lang}.json.gz", f"{split}.{lang}.json"):
        if (data_dir / name).exists():
            return data_dir / name
    raise FileNotFoundError(f"no {split}.{lang}.json(.gz) in {data_dir}; expected xGQA's official question format")


def read_xgqa(path: str | Path) -> dict[str, dict]:
    """question id -> record of one xGQA/GQA question file; checks the fields used here."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object keyed by question id, got {type(data).__name__}")
    for qid, record in data.items():
        for field in ("question", "imageId"):
            value = record.get(field) if isinstance(record, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{path}: question {qid}: field {field!r} missing or empty")
    return data


def question_pairs(data_dir: str | Path, src: str, tgt: str, split: str = "train_48") -> list[QuestionPair]:
    """Questions present in both languages, joined on the question id (sorted by id)."""
    a, b = read_xgqa(xgqa_path(data_dir, src, split)), read_xgqa(xgqa_path(data_dir, tgt, split))
    pairs = []
    for qid in sorted(set(a) & set(b)):
        if a[qid]["imageId"] != b[qid]["imageId"]:
            raise ValueError(f"{data_dir}: question {qid}: imageId differs between {src} and {tgt}")
        pairs.append(QuestionPair(qid, a[qid]["imageId"], a[qid]["question"].strip(), b[qid]["question"].strip()))
    return pairs


def heldout_images(pairs: list[QuestionPair], n_images: int, seed: int = 0) -> set[str]:
    """``n_images`` image ids chosen by a seeded hash (stable when questions are added)."""
    images = sorted({p.image_id for p in pairs}, key=lambda i: hashlib.sha1(f"{seed}:{i}".encode()).hexdigest())
    if n_images >= len(images):
        raise ValueError(f"cannot hold out {n_images} of {len(images)} images: nothing left to train on")
    return set(images[:n_images])


def split_by_image(pairs: list[QuestionPair], n_images: int, seed: int = 0):
    """(train, held-out): every question about a held-out image is held out."""
    held = heldout_images(pairs, n_images, seed)
    return [p for p in pairs if p.image_id not in held], [p for p in pairs if p.image_id in held]


def write_heldout(pairs: list[QuestionPair], out_dir: str | Path, src: str, tgt: str, split: str = "val") -> Path:
    """Write ``pairs`` as ``SPLIT.SRC.gz``, ``SPLIT.TGT.gz`` (one question per line) and ``SPLIT.ids``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for lang, texts in ((src, [p.src for p in pairs]), (tgt, [p.tgt for p in pairs])):
        if any("\n" in t for t in texts):
            raise ValueError("a question contains a newline; the line layout cannot hold it")
        with gzip.GzipFile(out_dir / f"{split}.{lang}.gz", "wb", mtime=0) as f:  # mtime 0: reproducible bytes
            f.write(("\n".join(texts) + "\n").encode("utf-8"))
    (out_dir / f"{split}.ids").write_text("".join(f"{p.question_id}\t{p.image_id}\n" for p in pairs))
    return out_dir

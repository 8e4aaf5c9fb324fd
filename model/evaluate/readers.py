"""Readers for the benchmarks' official files, one function per benchmark, all returning ``BenchmarkData``.

Each reader takes the folder of the published annotation files (``data_dir``) and the image folder
(``images_dir``) and yields one ``EvalItem`` per scored example: image path(s), the paper's prompt and
the references. File layouts (as published):

- XM3600: ``captions.jsonl``, one row per image: ``image/key`` and per language ``{"caption": [...]}``;
  images ``<key>.jpg``.
- xGQA: GQA question JSON (question id -> ``{imageId, question, answer, ...}``) per language:
  few-shot ``<lang>/<split>.json`` (split ``test``, ``dev``, ``train_48``...), the zero-shot
  ``testdev_balanced_questions_<lang>.json``, or ``<split>.<lang>.json``; ``.gz`` accepted.
  Images ``<imageId>.jpg``.
- MaXM: ``maxm_v1_<lang>.json`` with ``annotations[]`` (``image_id``, ``qa_pairs[]`` with ``question``
  and ``processed_answers``); images are XM3600's ``<image_id>.jpg``.
- XVNLI: ``annotations/<lang>/<split>.jsonl`` with ``Flikr30kID`` (sic), ``pairID``, ``gold_label``,
  ``sentence2``; Flickr30k images ``<id>.jpg``. Pairs whose ``gold_label`` is ``-`` (no annotator
  consensus, in the published test and few-shot files) are skipped and counted, as the reference skips them.
- MaRVL: ``marvl-<lang>.jsonl`` (the zero-shot test split) or ``marvl-<lang>_<split>.jsonl`` (few-shot
  splits such as ``train2``), in ``data_dir`` or ``data_dir/annotations``, with ``concept``,
  ``language``, ``caption``, ``left_img``, ``right_img``, ``label``; images
  ``<language>/images/<concept>/<img>`` (NFKD; the few-shot files already write ``<concept>/<img>``).
  English is NLVR2's ``test1.json`` (``identifier``, ``sentence``, ``label``; images
  ``<identifier minus the last part>-img0.png`` / ``-img1.png``).
- xFlickrCO: ``annotations/<lang>/<split>.jsonl`` with ``sentences`` and ``img_path``. English is
  Flickr30k's ``annotations/test_ann.jsonl`` as in the reference (``valid_ann`` for split ``dev``), found
  in ``data_dir/flickr30k`` or beside ``data_dir`` (IGLUE's ``datasets/flickr30k`` next to
  ``datasets/xFlickrCO``).
- POPE: ``coco_pope_<subset>.json`` (JSON lines ``{question_id, image, text, label}``), subsets random,
  popular, adversarial (reported in place of languages).
- COCO (English captioning baseline): the Karpathy split file ``dataset_coco.json`` (``images[]`` with
  ``split``, ``filepath``, ``filename``, ``cocoid``, ``sentences[].raw``), the images of one split (``test``);
  images ``<filepath>/<filename>``.
- VQAv2 (English VQA baseline): ``v2_OpenEnded_mscoco_<split>_questions.json`` (``questions[]`` with
  ``question_id``, ``image_id``, ``question``) and ``v2_mscoco_<split>_annotations.json`` (``annotations[]``
  with ``question_id`` and the 10 ``answers[].answer``), split ``val2014``; images
  ``[<split>/]COCO_<split>_<image_id:012d>.jpg``.
- CHAIR: COCO's ``instances_<folder>.json`` (``images``, ``annotations`` with ``image_id`` and
  ``category_id``, ``categories``) and ``captions_<folder>.json`` in ``data_dir`` or ``data_dir/annotations``;
  the images of a Karpathy split (``dataset_coco.json``, split ``test``: folder ``val2014``), or with
  ``--split val2014`` every image of ``instances_val2014.json``. The references are the image's
  ground-truth categories (``chair.CocoObjects.ground_truth``). A Karpathy image needs its ``cocoid``, and an
  image the captions file never names is an error (it would have no ground truth).

A record without a required field, or whose image file is missing, raises ``BenchmarkFormatError``
naming file, record and field; with ``skip_missing`` it is counted in ``skipped`` instead (with the
reason), never dropped silently. Records the reference skips rather than scores (XVNLI's ``-`` label)
are always counted in ``skipped`` and never stop the run. ``limit`` keeps the first N valid items per
language. ``language_names`` picks the spelling of language names in prompts (``prompts.py``).

Longer than most modules on purpose: ten small readers that share one collector read best side by side.
"""

from __future__ import annotations

import gzip
import json
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.evaluate import prompts
from model.evaluate.chair import CocoObjects
from pipeline.ingest.base import SourceError
from pipeline.ingest.coco import iter_json_items


class BenchmarkFormatError(ValueError):
    """A benchmark file or record that does not have the official format (names file, record, field)."""


@dataclass(frozen=True)
class EvalItem:
    key: str  # unique within (benchmark, lang): question id, image key, pair id...
    lang: str  # language code as the benchmark spells it (POPE: the subset)
    images: tuple[Path, ...]  # one image; MaRVL/NLVR2: left, right
    prompt: str
    references: tuple[str, ...]  # captions, accepted answers, or the label word
    source: str  # "file, record R" for error messages


@dataclass
class BenchmarkData:
    benchmark: str
    languages: tuple[str, ...]
    items: list[EvalItem] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"lang", "source", "reason", "kind"}
    records: int = 0  # records read (items + skipped, before ``limit``)


class _Collector:
    """Collects items per language; bad records raise or, with ``skip_missing``, are counted."""

    def __init__(
        self,
        data: BenchmarkData,
        images_dir: Path,
        skip_missing: bool,
        limit: int | None,
        check_images: bool = True,
        language_names: str = "project",
    ):
        self.data, self.images_dir, self.skip_missing, self.limit = data, Path(images_dir), skip_missing, limit
        self.check_images, self.language_names = check_images, language_names
        self.per_lang: dict[str, int] = {}

    def full(self, lang: str) -> bool:
        return self.limit is not None and self.per_lang.get(lang, 0) >= self.limit

    def bad(self, lang: str, source: str, reason: str) -> None:
        self.data.records += 1
        if not self.skip_missing:
            raise BenchmarkFormatError(f"{source}: {reason} (pass --skip-missing to count and skip such records)")
        kind = "missing image" if reason.startswith("missing image") else "malformed record"
        self.data.skipped.append({"lang": lang, "source": source, "reason": reason, "kind": kind})

    def unscored(self, lang: str, source: str, reason: str, kind: str) -> None:
        """A well-formed record the reference skips rather than scores: counted, never an error."""
        if self.full(lang):
            return
        self.data.records += 1
        self.data.skipped.append({"lang": lang, "source": source, "reason": reason, "kind": kind})

    def add(
        self, key: str, lang: str, images: Sequence[Path], prompt: str, references: Sequence[str], source: str
    ) -> None:
        if self.full(lang):
            return
        for image in images if self.check_images else ():
            if not image.is_file():
                self.bad(lang, source, f"missing image {image}")
                return
        self.data.records += 1
        self.per_lang[lang] = self.per_lang.get(lang, 0) + 1
        self.data.items.append(EvalItem(str(key), lang, tuple(images), prompt, tuple(references), source))


def open_binary(path: Path):
    """The file's bytes, gunzipped when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_json(path: Path) -> Any:
    try:
        with open_binary(path) as handle:
            return json.load(handle)
    except json.JSONDecodeError as e:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise BenchmarkFormatError(f"{path}: byte 0x{e.object[e.start]:02X} at offset {e.start} is not valid UTF-8 "
                                   "(JSON must be UTF-8)") from None


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(1-based line number, JSON value, None) for each non-empty line, or (line number, None, reason) for one
    that is not UTF-8 or not JSON. The file is read as bytes and each line decoded on its own, so that a bad line
    is that line's error (a record to count or raise) rather than a decoding error that ends the file."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield number, None, f"byte 0x{raw[e.start]:02X} at column {e.start + 1} is not valid UTF-8"
                continue
            if number == 1:
                line = line.removeprefix("\ufeff")  # the byte-order mark some editors write
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as e:
                yield number, None, f"not valid JSON ({e.msg})"


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, record or None, error or None) for each non-empty line: ``iter_json_lines``, where a line
    that is not a JSON object is an error too."""
    for number, value, error in iter_json_lines(path):
        if error is None and not isinstance(value, dict):
            value, error = None, "not an object"
        yield number, value, error


def _field(record: dict, name: str, kind: type | tuple[type, ...]) -> Any:
    """``record[name]`` if present, of ``kind`` and not empty; else a KeyError naming the field."""
    value = record.get(name)
    if value is None or not isinstance(value, kind) or (isinstance(value, (str, list)) and not value):
        raise KeyError(f"field {name!r} missing, empty or not {getattr(kind, '__name__', kind)}")
    return value


def _first_existing(candidates: Sequence[Path], what: str) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{what}: none of {', '.join(str(p) for p in candidates)} exists")


def _image_file(images_dir: Path, name: str) -> Path:
    """``name`` as given when it has an image extension, else ``name.jpg`` (Flickr30k / GQA ids)."""
    suffix = Path(name).suffix.lower()
    return images_dir / (name if suffix in (".jpg", ".jpeg", ".png") else f"{name}.jpg")


# ---------------------------------------------------------------------------------------------------
# Captioning
# ---------------------------------------------------------------------------------------------------


def read_xm3600(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    path = _first_existing([data_dir / "captions.jsonl", data_dir / "captions.jsonl.gz"], "XM3600 captions")
    for number, record, error in iter_jsonl(path):
        source = f"{path}, line {number}"
        if record is None:
            for lang in languages:
                col.bad(lang, source, error)
            continue
        key = record.get("image/key")
        for lang in languages:
            if col.full(lang):
                continue
            try:
                if not isinstance(key, str) or not key:
                    raise KeyError("field 'image/key' missing or empty")
                captions = _field(_field(record, lang, dict), "caption", list)
                if not all(isinstance(c, str) for c in captions):
                    raise KeyError(f"field '{lang}.caption' holds a non-string")
            except KeyError as e:
                col.bad(lang, source, e.args[0])
                continue
            prompt = prompts.caption_prompt(lang, col.language_names)
            col.add(key, lang, [images_dir / f"{key}.jpg"], prompt, captions, f"{source} ({key})")


# Flickr30k's annotation file per split (IGLUE ``datasets/flickr30k/annotations/``): the reference scores
# xFlickrCO English on ``test_ann.jsonl`` (mBLIP data/flickr/generate_flickr.py).
FLICKR30K_FILES = {"test": "test_ann.jsonl", "dev": "valid_ann.jsonl", "valid": "valid_ann.jsonl"}


def flickr30k_file(data_dir: Path, split: str) -> Path:
    name = FLICKR30K_FILES.get(split, f"{split}_ann.jsonl")
    folders = [data_dir / "flickr30k", data_dir.parent / "flickr30k", data_dir.parent / "Flickr30k"]
    return _first_existing([folder / "annotations" / name for folder in folders], "xFlickrCO en (Flickr30k)")


def read_xflickrco(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    for lang in languages:
        if lang == "en":
            path = flickr30k_file(data_dir, split)
        else:
            path = _first_existing([data_dir / "annotations" / lang / f"{split}.jsonl"], f"xFlickrCO {lang}")
        for number, record, error in iter_jsonl(path):
            source = f"{path}, line {number}"
            try:
                if record is None:
                    raise KeyError(error)
                captions = _field(record, "sentences", list)
                image = _field(record, "img_path", str)
            except KeyError as e:
                col.bad(lang, source, e.args[0])
                continue
            key = record.get("id", image)
            col.add(key, lang, [images_dir / image], prompts.caption_prompt(lang, col.language_names), captions, source)


# ---------------------------------------------------------------------------------------------------
# Question answering
# ---------------------------------------------------------------------------------------------------


def xgqa_file(data_dir: Path, lang: str, split: str) -> Path:
    names = [data_dir / lang / f"{split}.json", data_dir / f"{split}.{lang}.json", data_dir / f"{split}_{lang}.json"]
    if split in ("testdev", "testdev_balanced"):
        names.insert(0, data_dir / f"testdev_balanced_questions_{lang}.json")
    return _first_existing([p for name in names for p in (name, name.with_name(name.name + ".gz"))], f"xGQA {lang}")


def read_xgqa(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    for lang in languages:
        path = xgqa_file(data_dir, lang, split)
        questions = read_json(path)
        if not isinstance(questions, dict):
            raise BenchmarkFormatError(f"{path}: expected the GQA question dict (question id -> question)")
        for qid, record in questions.items():
            source = f"{path}, question {qid}"
            try:
                if not isinstance(record, dict):
                    raise KeyError("record is not an object")
                image, question = _field(record, "imageId", str), _field(record, "question", str)
                answer = _field(record, "answer", str)
            except KeyError as e:
                col.bad(lang, source, e.args[0])
                continue
            col.add(qid, lang, [_image_file(images_dir, image)], prompts.xgqa_prompt(question), [answer], source)


def read_maxm(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    for lang in languages:
        path = _first_existing([data_dir / f"maxm_v1_{lang}.json"], f"MaXM {lang}")
        annotations = read_json(path)
        annotations = annotations.get("annotations") if isinstance(annotations, dict) else None
        if not isinstance(annotations, list):
            raise BenchmarkFormatError(f"{path}: expected an object with an 'annotations' list")
        for index, record in enumerate(annotations):
            source = f"{path}, annotation {index}"
            try:
                image = _field(record, "image_id", str) if isinstance(record, dict) else None
                pairs = _field(record, "qa_pairs", list) if image else None
                if not image:
                    raise KeyError("record is not an object")
            except KeyError as e:
                col.bad(lang, source, e.args[0])
                continue
            for number, pair in enumerate(pairs):
                where = f"{source}, qa_pair {number}"
                try:
                    if not isinstance(pair, dict):
                        raise KeyError("qa_pair is not an object")
                    question, answers = _field(pair, "question", str), _field(pair, "processed_answers", list)
                except KeyError as e:
                    col.bad(lang, where, e.args[0])
                    continue
                key = pair.get("question_id", f"{image}:{number}")
                prompt = prompts.maxm_prompt(question, lang, col.language_names)
                col.add(key, lang, [_image_file(images_dir, image)], prompt, answers, where)


# ---------------------------------------------------------------------------------------------------
# Entailment and reasoning
# ---------------------------------------------------------------------------------------------------

XVNLI_LABELS = {"entailment": "yes", "neutral": "maybe", "contradiction": "no"}
# SNLI's gold label when the annotators reached no consensus; the reference skips such pairs.
NO_GOLD_LABEL = "-"


def read_xvnli(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    for lang in languages:
        path = _first_existing([data_dir / "annotations" / lang / f"{split}.jsonl"], f"XVNLI {lang}")
        for number, record, error in iter_jsonl(path):
            source = f"{path}, line {number}"
            try:
                if record is None:
                    raise KeyError(error)
                image = str(_field(record, "Flikr30kID", (str, int)))
                hypothesis, label = _field(record, "sentence2", str), _field(record, "gold_label", str)
                if label not in XVNLI_LABELS and label != NO_GOLD_LABEL:
                    raise KeyError(f"field 'gold_label' is {label!r}, not one of {sorted(XVNLI_LABELS)} or '-'")
            except KeyError as e:
                col.bad(lang, source, e.args[0])
                continue
            key = record.get("pairID", f"{lang}:{number}")
            if label == NO_GOLD_LABEL:
                col.unscored(lang, f"{source} ({key})", "gold_label '-' (no annotator consensus)", "no gold label")
                continue
            col.add(
                key,
                lang,
                [_image_file(images_dir, image)],
                prompts.xvnli_prompt(hypothesis),
                [XVNLI_LABELS[label]],
                source,
            )


def _bool_label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise KeyError(f"field 'label' is {value!r}, not a boolean")


def marvl_file(data_dir: Path, lang: str, split: str) -> Path:
    """``marvl-<lang>.jsonl`` (zero-shot test) or ``marvl-<lang>_<split>.jsonl`` (few-shot splits)."""
    names = [f"marvl-{lang}_{split}.jsonl"] + ([f"marvl-{lang}.jsonl"] if split == "test" else [])
    return _first_existing([folder / name for name in names for folder in (data_dir, data_dir / "annotations")],
                           f"MaRVL {lang}")


def marvl_image(images_dir: Path, folder: str, concept: str, name: str) -> Path:
    """``<language>/images/<concept>/<img>``, NFKD-normalised as the reference does (concept folder names mix
    composed and decomposed accents). The few-shot files' ``left_img`` already starts with the concept."""
    name, concept = unicodedata.normalize("NFKD", name), unicodedata.normalize("NFKD", concept)
    relative = name if name.split("/", 1)[0] == concept else f"{concept}/{name}"
    return images_dir / unicodedata.normalize("NFKD", f"{folder}/images/{relative}")


def read_marvl(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    for lang in languages:
        if lang == "en":
            _read_nlvr2(data_dir, images_dir, col)
            continue
        path = marvl_file(data_dir, lang, split)
        for number, record, error in iter_jsonl(path):
            source = f"{path}, line {number}"
            try:
                if record is None:
                    raise KeyError(error)
                concept, folder = _field(record, "concept", str), _field(record, "language", str)
                caption, label = _field(record, "caption", str), _bool_label(record.get("label"))
                left, right = _field(record, "left_img", str), _field(record, "right_img", str)
            except KeyError as e:
                col.bad(lang, source, e.args[0])
                continue
            images = [marvl_image(images_dir, folder, concept, img) for img in (left, right)]
            key = record.get("id", f"{lang}:{number}")
            col.add(key, lang, images, prompts.marvl_prompt(caption), ["yes" if label else "no"], source)


def _read_nlvr2(data_dir: Path, images_dir: Path, col: _Collector) -> None:
    path = _first_existing([data_dir / "nlvr2" / "test1.json", data_dir / "test1.json"], "MaRVL en (NLVR2 test1)")
    for number, record, error in iter_jsonl(path):
        source = f"{path}, line {number}"
        try:
            if record is None:
                raise KeyError(error)
            identifier, sentence = _field(record, "identifier", str), _field(record, "sentence", str)
            label = _bool_label(record.get("label"))
        except KeyError as e:
            col.bad("en", source, e.args[0])
            continue
        stem = identifier.rsplit("-", 1)[0]  # "test1-0-1-0" -> images "test1-0-1-img0.png", "-img1.png"
        images = [images_dir / f"{stem}-img{side}.png" for side in (0, 1)]
        col.add(identifier, "en", images, prompts.marvl_prompt(sentence), ["yes" if label else "no"], source)


def read_pope(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    for subset in languages:
        path = _first_existing(
            [data_dir / f"coco_pope_{subset}.json", data_dir / f"coco_pope_{subset}.jsonl"], f"POPE {subset}"
        )
        for number, record, error in iter_jsonl(path):
            source = f"{path}, line {number}"
            try:
                if record is None:
                    raise KeyError(error)
                image, question = _field(record, "image", str), _field(record, "text", str)
                label = _field(record, "label", str).strip().lower()
                if label not in ("yes", "no"):
                    raise KeyError(f"field 'label' is {label!r}, not yes/no")
            except KeyError as e:
                col.bad(subset, source, e.args[0])
                continue
            key = record.get("question_id", f"{subset}:{number}")
            col.add(key, subset, [images_dir / image], question.strip(), [label], source)


# ---------------------------------------------------------------------------------------------------
# English baselines and CHAIR (COCO images)
# ---------------------------------------------------------------------------------------------------

KARPATHY_FILE = "dataset_coco.json"
KARPATHY_SPLITS = ("train", "restval", "val", "test")


def _json_items(path: Path, prefix: str, hint: str) -> Iterator[tuple[int, Any]]:
    """(index, item) of the JSON array at ``prefix`` (ijson syntax, ``images.item``), streamed by the ingest
    reader's ``iter_json_items`` (COCO's and VQAv2's files are hundreds of MB), which says what a file holds when
    it has no such item; its ``SourceError`` is raised as this module's ``BenchmarkFormatError``."""
    try:
        yield from enumerate(iter_json_items(path, prefix, hint))
    except SourceError as e:
        raise BenchmarkFormatError(str(e)) from None


def _coco_image(images_dir: Path, folder: str, name: str) -> Path:
    """``images_dir/<folder>/<name>`` (COCO's own layout), or ``images_dir/<name>`` when only that exists."""
    nested = images_dir / folder / name
    return nested if nested.is_file() or not (images_dir / name).is_file() else images_dir / name


def _karpathy_file(data_dir: Path) -> Path:
    return _first_existing([data_dir / KARPATHY_FILE, data_dir / "annotations" / KARPATHY_FILE], "Karpathy split")


def _karpathy_images(
    path: Path, split: str, col: _Collector, need_cocoid: bool = False
) -> Iterator[tuple[int, str, str, list, str]]:
    """(cocoid, filepath, filename, raw captions, source) of the split's images; an unknown split is an error.

    Without ``cocoid`` the key falls back to ``imgid`` (or the file name), which names a captioning item well
    enough; ``need_cocoid`` makes it a bad record instead, for readers that look the image up in COCO's own
    files: ``imgid`` is the image's position in the Karpathy file, not its COCO id."""
    seen: set[str] = set()
    for index, record in _json_items(path, "images.item", "is this Karpathy's dataset_coco.json?"):
        source = f"{path}, image {index}"
        try:
            if not isinstance(record, dict):
                raise KeyError("record is not an object")
            seen.add(record_split := _field(record, "split", str))
            if record_split != split:
                continue
            filename, folder = _field(record, "filename", str), record.get("filepath") or ""
            raw = [s.get("raw") if isinstance(s, dict) else None for s in _field(record, "sentences", list)]
            if not all(isinstance(r, str) and r.strip() for r in raw):
                raise KeyError("field 'sentences[].raw' missing or empty")
            key = _field(record, "cocoid", int) if need_cocoid else record.get("cocoid", record.get("imgid", filename))
        except KeyError as e:
            col.bad("en", source, e.args[0])
            continue
        yield key, folder, filename, raw, f"{source} ({filename})"
    if split not in seen:
        raise BenchmarkFormatError(f"{path}: no image of split {split!r}; the file has {', '.join(sorted(seen))}")


def read_coco(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    path = _karpathy_file(data_dir)
    for cocoid, folder, filename, captions, source in _karpathy_images(path, split, col):
        if col.full("en"):
            break
        image = _coco_image(images_dir, folder, filename)
        col.add(cocoid, "en", [image], prompts.caption_prompt("en", col.language_names), captions, source)


def _vqav2_answers(path: Path) -> tuple[dict[int, list[str]], dict[int, str]]:
    """question_id -> the human answers, and question_id -> why its annotation is unusable."""
    answers: dict[int, list[str]] = {}
    bad: dict[int, str] = {}
    for index, record in _json_items(path, "annotations.item", "is this VQAv2's annotations file?"):
        qid = record.get("question_id") if isinstance(record, dict) else None
        if not isinstance(qid, int):
            raise BenchmarkFormatError(f"{path}, annotation {index}: field 'question_id' missing or not an integer")
        given = record.get("answers")
        texts = [a.get("answer") if isinstance(a, dict) else None for a in given] if isinstance(given, list) else []
        if not texts or not all(isinstance(t, str) for t in texts):
            bad[qid] = f"{path.name}, annotation {index}: field 'answers[].answer' missing or not a string"
            continue
        answers[qid] = texts
    return answers, bad


def read_vqav2(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    questions = _first_existing([data_dir / f"v2_OpenEnded_mscoco_{split}_questions.json"], "VQAv2 questions")
    answers, bad = _vqav2_answers(
        _first_existing([data_dir / f"v2_mscoco_{split}_annotations.json"], "VQAv2 annotations")
    )
    for index, record in _json_items(questions, "questions.item", "is this VQAv2's questions file?"):
        if col.full("en"):
            break
        source = f"{questions}, question {index}"
        try:
            if not isinstance(record, dict):
                raise KeyError("record is not an object")
            qid, image_id = _field(record, "question_id", int), _field(record, "image_id", int)
            question = _field(record, "question", str)
            if qid in bad or qid not in answers:
                raise KeyError(bad.get(qid) or f"question_id {qid} has no annotation")
        except KeyError as e:
            col.bad("en", source, e.args[0])
            continue
        image = _coco_image(images_dir, split, f"COCO_{split}_{image_id:012d}.jpg")
        col.add(qid, "en", [image], prompts.vqav2_prompt(question), answers[qid], source)


def _coco_annotation_file(data_dir: Path, kind: str, folder: str) -> Path:
    name = f"{kind}_{folder}.json"
    return _first_existing([data_dir / name, data_dir / "annotations" / name], f"COCO {kind} ({folder})")


def _chair_images(data_dir: Path, split: str, col: _Collector) -> list[tuple[int, str, str, str]]:
    """(image id, folder, file name, source) of the images CHAIR scores: a Karpathy split's, or a folder's."""
    if split in KARPATHY_SPLITS:
        path = _karpathy_file(data_dir)
        return [(image, folder, name, source)
                for image, folder, name, _, source in _karpathy_images(path, split, col, need_cocoid=True)]
    path = _coco_annotation_file(data_dir, "instances", split)
    images = []
    for index, record in _json_items(path, "images.item", "is this a COCO instances file?"):
        source = f"{path}, image {index}"
        try:
            if not isinstance(record, dict):
                raise KeyError("record is not an object")
            images.append((_field(record, "id", int), split, _field(record, "file_name", str), source))
        except KeyError as e:
            col.bad("en", source, e.args[0])
    return images


def _chair_ground_truth(data_dir: Path, folder: str, wanted: set[int], objects: CocoObjects) -> dict[int, set[str]]:
    """image id -> its categories from ``instances_<folder>.json`` and the objects ``captions_<folder>.json``
    mentions, for the ``wanted`` images (the released CHAIR code's ground truth).

    A wanted image with no caption is not in the folder's files (every COCO image has at least five reference
    captions): an error, since an empty ground truth would count every object a caption names as hallucinated.
    Instances cannot tell, as some COCO images have no object annotated."""
    path = _coco_annotation_file(data_dir, "instances", folder)
    names = {}
    for index, record in _json_items(path, "categories.item", "is this a COCO instances file?"):
        try:
            category_id, name = _field(record, "id", int), _field(record, "name", str)
        except (KeyError, AttributeError):
            raise BenchmarkFormatError(f"{path}, category {index}: fields 'id' and 'name' needed") from None
        if not objects.is_category(name):
            raise BenchmarkFormatError(f"{path}, category {index}: field 'name' {name!r} is none of the 80 COCO "
                                       "categories of CHAIR's synonym list")
        names[category_id] = objects.category(name)
    categories: dict[int, set[str]] = {image: set() for image in wanted}
    for index, record in _json_items(path, "annotations.item", "is this a COCO instances file?"):
        if isinstance(record, dict) and record.get("image_id") in categories:
            if record.get("category_id") not in names:
                raise BenchmarkFormatError(f"{path}, annotation {index}: field 'category_id' "
                                           f"{record.get('category_id')!r} is none of the file's categories")
            categories[record["image_id"]].add(names[record["category_id"]])
    captions: dict[int, list[str]] = {image: [] for image in wanted}
    path = _coco_annotation_file(data_dir, "captions", folder)
    for index, record in _json_items(path, "annotations.item", "is this a COCO captions file?"):
        if isinstance(record, dict) and record.get("image_id") in captions:
            if not isinstance(record.get("caption"), str):
                raise BenchmarkFormatError(f"{path}, annotation {index}: field 'caption' missing or not a string")
            captions[record["image_id"]].append(record["caption"])
    missing = sorted(image for image, texts in captions.items() if not texts)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise BenchmarkFormatError(f"{path}: field 'annotations[].image_id' never names image {shown}, so the file "
                                   f"has no ground truth for it (every COCO image of {folder} has captions)")
    return {image: objects.ground_truth((), captions[image]) | categories[image] for image in wanted}


def read_chair(data_dir: Path, images_dir: Path, languages: Sequence[str], col: _Collector, split: str) -> None:
    objects = CocoObjects.load()
    images = _chair_images(data_dir, split, col)
    truth: dict[str, dict[int, set[str]]] = {}
    for folder in dict.fromkeys(folder for _, folder, _, _ in images):
        wanted = {image for image, f, _, _ in images if f == folder}
        truth[folder] = _chair_ground_truth(data_dir, folder, wanted, objects)
    prompt = prompts.caption_prompt("en", col.language_names)
    for image_id, folder, name, source in images:
        col.add(image_id, "en", [_coco_image(images_dir, folder, name)], prompt, sorted(truth[folder][image_id]),
                source)


Reader = Callable[[Path, Path, Sequence[str], _Collector, str], None]
READERS: dict[str, Reader] = {
    "xm3600": read_xm3600,
    "xgqa": read_xgqa,
    "maxm": read_maxm,
    "xvnli": read_xvnli,
    "marvl": read_marvl,
    "xflickrco": read_xflickrco,
    "pope": read_pope,
    "coco": read_coco,
    "vqav2": read_vqav2,
    "chair": read_chair,
}


def read_benchmark(
    benchmark: str,
    data_dir: str | Path,
    images_dir: str | Path,
    languages: Sequence[str],
    split: str,
    limit: int | None = None,
    skip_missing: bool = False,
    check_images: bool = True,
    language_names: str = "project",
) -> BenchmarkData:
    """Every item of ``languages`` (already validated against the benchmark) in file order.

    ``check_images=False`` lists the image paths without looking at them (placeholder generation);
    ``language_names``: "project" or "reference" spelling of language names in prompts."""
    if language_names not in prompts.LANGUAGE_NAMES:
        raise ValueError(f"language_names={language_names!r}: choose one of {', '.join(prompts.LANGUAGE_NAMES)}")
    data = BenchmarkData(benchmark, tuple(languages))
    col = _Collector(data, Path(images_dir), skip_missing, limit, check_images, language_names)
    READERS[benchmark](Path(data_dir), Path(images_dir), languages, col, split)
    return data

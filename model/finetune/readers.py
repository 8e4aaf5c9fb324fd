"""Readers of the four task training files as published, each yielding trainer rows (English prompt and target).

- GQA (for xGQA): ``train_balanced_questions.json``, one JSON object: question id -> ``{imageId, question,
  answer, ...}``, streamed with ijson. Images ``<imageId>.jpg``. Prompt: the xGQA evaluation's "Question: {q}
  Short answer in English:", target the answer.
- SNLI-VE (for XVNLI): ``snli_ve_train.jsonl``: ``Flickr30K_ID``, ``sentence2`` (the hypothesis; the image is
  the premise), ``gold_label`` (entailment / neutral / contradiction -> yes / maybe / no), ``pairID``; Flickr30k
  images ``<id>.jpg``. Prompt: the XVNLI evaluation's. A ``-`` label (no annotator consensus; SNLI-VE's
  generator already drops them) is skipped and counted, as the XVNLI reader does.
- NLVR2 (for MaRVL): ``train.json``, JSON lines: ``identifier`` (``{split}-{set}-{pair}-{sentence}``),
  ``sentence``, ``label`` ("True"/"False"), ``directory`` (train only: the sub-folder, 0-99, of NLVR2's image
  download). Images ``[<directory>/]<identifier minus its last part>-img0.png`` (left) and ``-img1.png`` (right).
  Prompt: the MaRVL evaluation's, target yes/no; both images go through the vision side, left then right.
- Flickr30k captions (for xFlickrCO): Karpathy's ``dataset_flickr30k.json`` (``images[]`` with ``filename``,
  ``split``, ``sentences[].raw``): the images of the selected splits (default train), one row per caption.
  Images ``<filename>``. Prompt: "Caption in English: " (the xFlickrCO evaluation's).

A record missing a field, holding a value of the wrong kind, or naming an image that is not there is a
``BadRecord`` (file, record index, record id, field, reason), which ``prepare.py`` quarantines or raises;
records a recipe leaves out by rule (SNLI-VE's ``-`` label, Karpathy images of another split) are counted as
skipped. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.data import EXTRA_IMAGES_COLUMN
from model.evaluate.prompts import caption_prompt, marvl_prompt, xgqa_prompt, xvnli_prompt
from model.evaluate.readers import NO_GOLD_LABEL, XVNLI_LABELS, iter_json_lines, open_binary
from pipeline.ingest.coco import iter_json_items

# Recipe (the benchmark it fine-tunes for) -> the task of its training rows (model/data.py FINETUNE_TASKS), which
# is also the rows' source, whose image root the manifest records.
RECIPES = {"xgqa": "gqa", "xvnli": "snli_ve", "marvl": "nlvr2", "xflickrco": "flickr30k"}
QUARANTINED = "quarantined"  # a malformed record: quarantined (or an error, finetune.on_bad_record)
SKIPPED = "skipped"  # a well-formed record the recipe leaves out by rule: counted per reason
NLVR2_LABELS = {"true": "yes", "false": "no"}


@dataclass(frozen=True)
class BadRecord:
    source_file: str
    record_index: int  # 0-based position of the record in its file (a line of a JSON-lines file)
    record_id: str | None
    field: str
    reason: str
    kind: str = QUARANTINED

    def describe(self) -> str:
        named = f" ({self.record_id})" if self.record_id is not None else ""
        return f"{self.source_file}, record {self.record_index}{named}, field {self.field!r}: {self.reason}"


class RecordError(ValueError):
    """A record a reader cannot turn into rows: the field and the reason."""

    def __init__(self, field: str, reason: str, kind: str = QUARANTINED):
        super().__init__(f"field {field!r}: {reason}")
        self.field, self.reason, self.kind = field, reason, kind


class ImageIndex:
    """Image files under the recipe's image folder, each path looked up once (GQA asks ~13 questions per image)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.found: dict[str, bool] = {}

    def exists(self, rel: str) -> bool:
        if rel not in self.found:
            self.found[rel] = (self.root / rel).is_file()
        return self.found[rel]

    def first(self, candidates: Sequence[str], field: str) -> str:
        """The first candidate (relative path) that exists; else a ``RecordError`` naming them all."""
        for rel in candidates:
            if self.exists(rel):
                return rel
        raise RecordError(field, "missing image " + " or ".join(str(self.root / rel) for rel in candidates))


def make_row(task: str, key: str, image_id: str, images: Sequence[str], prompt: str, target: str, text_en: str,
             answer_en: str | None = None) -> dict[str, Any]:
    """A trainer row (model/data.py ``ROW_COLUMNS``): English, with its own prompt and target; ``images`` relative
    to the recipe's image folder (the manifest's image root of source ``task``), the first in ``image_path``."""
    return {"example_id": f"{task}:{key}", "task": task, "image_id": image_id, "image_path": images[0],
            EXTRA_IMAGES_COLUMN: list(images[1:]), "source": task, "text_en": text_en, "answer_en": answer_en,
            "lang": "en", "text_tgt": None, "answer_tgt": None, "prompt": prompt, "target": target}


def text(record: dict, name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(name, "missing, empty or not a string" if value is None or isinstance(value, str)
                          else f"{type(value).__name__}, not a string")
    return value.strip()


def identifier(record: dict, name: str) -> str:
    """An id field: a non-empty string or an integer (as some re-exports write Flickr30k ids)."""
    value = record.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text(record, name)


# ---------------------------------------------------------------------------------------------------
# One function per format: record -> rows (raises RecordError)
# ---------------------------------------------------------------------------------------------------


def gqa_rows(qid: str, record: dict, images: ImageIndex) -> list[dict]:
    image_id, question, answer = identifier(record, "imageId"), text(record, "question"), text(record, "answer")
    image = images.first([f"{image_id}.jpg"], "imageId")
    return [make_row("gqa", qid, image_id, [image], xgqa_prompt(question), answer, question, answer)]


def snli_ve_rows(key: str, record: dict, images: ImageIndex) -> list[dict]:
    label = text(record, "gold_label").lower()
    if label == NO_GOLD_LABEL:
        raise RecordError("gold_label", "'-': no annotator consensus (skipped, as the XVNLI evaluation does)", SKIPPED)
    if label not in XVNLI_LABELS:
        raise RecordError("gold_label", f"{label!r} is not one of {', '.join(XVNLI_LABELS)}")
    image_id, hypothesis = identifier(record, "Flickr30K_ID"), text(record, "sentence2")
    image = images.first([image_id if image_id.endswith(".jpg") else f"{image_id}.jpg"], "Flickr30K_ID")
    word = XVNLI_LABELS[label]
    return [make_row("snli_ve", key, image_id, [image], xvnli_prompt(hypothesis), word, hypothesis, word)]


def nlvr2_rows(key: str, record: dict, images: ImageIndex) -> list[dict]:
    name, sentence = text(record, "identifier"), text(record, "sentence")
    raw = record.get("label")
    label = NLVR2_LABELS.get(str(raw).strip().lower()) if isinstance(raw, (str, bool)) else None
    if label is None:
        raise RecordError("label", f"{raw!r} is not True or False")
    if "-" not in name:
        raise RecordError("identifier", f"{name!r} is not NLVR2's {{split}}-{{set}}-{{pair}}-{{sentence}}")
    stem = name.rsplit("-", 1)[0]  # "train-10171-0-0" -> "train-10171-0-img0.png", "-img1.png"
    folder = record.get("directory")
    prefixes = ([f"{folder}/"] if isinstance(folder, (str, int)) and str(folder) else []) + [""]
    pair = [images.first([f"{prefix}{stem}-img{side}.png" for prefix in prefixes], "identifier") for side in (0, 1)]
    return [make_row("nlvr2", name, stem, pair, marvl_prompt(sentence), label, sentence, label)]


def karpathy_rows(key: str, record: dict, images: ImageIndex, splits: Sequence[str]) -> list[dict]:
    split = text(record, "split")
    if split not in splits:
        raise RecordError("split", f"split {split!r} (not selected: {', '.join(splits)})", SKIPPED)
    filename = text(record, "filename")
    sentences = record.get("sentences")
    if not isinstance(sentences, list) or not sentences:
        raise RecordError("sentences", "missing, empty or not a list")
    image = images.first([filename], "filename")
    rows = []
    for number, sentence in enumerate(sentences):
        if not isinstance(sentence, dict):
            raise RecordError(f"sentences[{number}]", "not an object")
        try:
            caption = text(sentence, "raw")
        except RecordError as err:
            raise RecordError(f"sentences[{number}].raw", err.reason) from None
        sentid = sentence.get("sentid", f"{key}.{number}")
        rows.append(make_row("flickr30k", str(sentid), filename, [image], caption_prompt("en"), caption, caption))
    return rows


# ---------------------------------------------------------------------------------------------------
# Files -> rows and bad records
# ---------------------------------------------------------------------------------------------------


def gqa_records(path: Path) -> Iterator[tuple[int, str | None, Any]]:
    import ijson

    with open_binary(path) as handle:
        try:
            for index, (qid, record) in enumerate(ijson.kvitems(handle, "")):
                yield index, qid, record
        except ijson.JSONError as err:
            raise ValueError(f"{path}: not the GQA question JSON (question id -> question) ({err})") from None


def json_line_records(path: Path, key_field: str) -> Iterator[tuple[int, str | None, Any]]:
    """(0-based line index, key, record) of each non-empty line; a line that is not UTF-8 or not JSON gives a
    ``RecordError`` on field ``(line)``."""
    for number, record, error in iter_json_lines(path):
        index = number - 1
        if error is not None:
            record = RecordError("(line)", error)
        key = record.get(key_field) if isinstance(record, dict) else None
        yield index, str(key) if isinstance(key, (str, int)) and str(key) else f"line-{index}", record


def karpathy_records(path: Path) -> Iterator[tuple[int, str | None, Any]]:
    images = iter_json_items(path, "images.item", hint="is this Karpathy's split file ({\"images\": [...]})?")
    for index, record in enumerate(images):
        key = record.get("imgid", record.get("filename")) if isinstance(record, dict) else None
        yield index, None if key is None else str(key), record


RowsOf = Callable[[str, dict, ImageIndex], list[dict]]


def read_task_file(path: Path, records: Iterator[tuple[int, str | None, Any]], rows_of: RowsOf,
                   images: ImageIndex) -> Iterator[list[dict] | BadRecord]:
    """The rows of each good record (a list: a Karpathy image gives one row per caption), a ``BadRecord`` for
    every other one, in file order."""
    for index, key, record in records:
        try:
            if isinstance(record, RecordError):
                raise record
            if not isinstance(record, dict):
                raise RecordError("(record)", f"{type(record).__name__}, not a JSON object")
            yield rows_of(key, record, images)
        except RecordError as err:
            yield BadRecord(str(path), index, key, err.field, err.reason, err.kind)


def read_training_file(recipe: str, path: Path, images: ImageIndex,
                       splits: Sequence[str] = ("train",)) -> Iterator[list[dict] | BadRecord]:
    """The rows and bad records of one recipe's training file (``recipe``: xgqa, xvnli, marvl, xflickrco)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"finetune.train_file: {path} does not exist")
    if recipe == "xgqa":
        return read_task_file(path, gqa_records(path), gqa_rows, images)
    if recipe == "xvnli":
        return read_task_file(path, json_line_records(path, "pairID"), snli_ve_rows, images)
    if recipe == "marvl":
        return read_task_file(path, json_line_records(path, "identifier"), nlvr2_rows, images)
    if recipe == "xflickrco":
        return read_task_file(path, karpathy_records(path),
                              lambda key, record, found: karpathy_rows(key, record, found, splits), images)
    raise ValueError(f"finetune.recipe={recipe!r}: choose one of {', '.join(RECIPES)}")

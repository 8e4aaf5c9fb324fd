"""VQAv2 reader: the official questions file joined with the annotations file on ``question_id``.

Questions (``v2_OpenEnded_mscoco_train2014_questions.json``): ``{"data_subtype": "train2014",
"questions": [{"image_id", "question", "question_id"}]}``. Annotations
(``v2_mscoco_train2014_annotations.json``): ``{"annotations": [{"question_id", "image_id",
"multiple_choice_answer", "answers": [{"answer", "answer_confidence", "answer_id"}], ...}]}``.

One row per question, ``source_record_id`` = question_id, keeping ``multiple_choice_answer`` and all
(10) human answers. Images are the COCO images: ``{data_subtype}/COCO_{data_subtype}_{image_id:012d}.jpg``.
The annotations are indexed first (one compact string per question), then questions stream through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pipeline.ingest.base import (
    BatchBuilder,
    ReadBatch,
    RecordError,
    SourceError,
    check_file,
    relative_source_file,
    require,
    require_id,
    require_text,
    source_root,
)
from pipeline.ingest.coco import iter_json_items
from pipeline.ingest.source import SourceBase
from pipeline.schema import TASK_VQA, TASK_VQG

_SEP = "\x1f"
SWAP_HINT = "expected the VQAv2 {kind} file (like {name}); are questions and annotations swapped?"


def _read_subtype(path: Path) -> str | None:
    import ijson

    try:
        with path.open("rb") as f:
            for prefix, event, value in ijson.parse(f):
                if prefix == "data_subtype" and event == "string":
                    return value
                if prefix == "questions" and event == "start_array":
                    return None  # data_subtype, when present, precedes the questions
    except ijson.JSONError as e:
        raise SourceError(f"{path}: not valid JSON ({e})") from e
    return None


class Vqav2Reader:
    def __init__(
        self,
        questions: str | Path,
        annotations: str | Path,
        name: str = "vqav2",
        data_subtype: str | None = None,
        root: str | Path | None = None,
        task: str = TASK_VQA,
    ):
        self.questions = check_file(questions)
        self.annotations = check_file(annotations)
        self.name = name
        self.data_subtype = data_subtype
        # Rows name their file relative to this (default: the folder holding both files).
        self.root = Path(root) if root else source_root(self.questions, self.annotations)
        # TASK_VQG reads the same files for question generation: each row keeps its own record's
        # question, answer and image (the reference paired answers with other questions' images).
        self.task = task

    def _index_annotations(self, builder: BatchBuilder):
        """question_id -> (image_id, multiple_choice_answer, answers joined by a separator), plus the
        bad annotations by question_id (held back: they are reported once, against their question)."""
        index: dict[int, tuple[int, str, str]] = {}
        bad: dict[int, tuple[int, object, RecordError]] = {}
        path = relative_source_file(self.annotations, self.root)
        for i, ann in enumerate(iter_json_items(self.annotations, "annotations.item", hint=SWAP_HINT.format(
                kind="annotations", name="v2_mscoco_train2014_annotations.json"))):
            rid = ann.get("question_id") if isinstance(ann, dict) else None
            try:
                qid = require_id(ann, "question_id")
            except RecordError as err:  # cannot belong to any question: an orphan record of its own
                builder.quarantine(i, ann, rid, RecordError(f"annotations.{err.field}", err.reason), source_file=path)
                continue
            try:
                if qid in index or qid in bad:
                    raise RecordError("question_id", f"duplicate annotation for question {qid}")
                image_id = require_id(ann, "image_id")
                mc = require_text(ann, "multiple_choice_answer")
                answers = require(ann, "answers", list)
                texts = []
                for j, a in enumerate(answers):
                    if isinstance(a, dict) and isinstance(a.get("answer"), str) and not a["answer"].strip():
                        builder.count("blank_answers_dropped")  # one blank of ten: drop it, keep the question
                        continue
                    try:
                        texts.append(require_text(a, "answer"))
                    except RecordError as err:
                        raise RecordError(f"answers[{j}].{err.field}", err.reason) from None
                if not texts:
                    raise RecordError("answers", "no answers")
            except RecordError as err:
                if qid in index:  # a duplicate invalidates the first one too
                    del index[qid]
                bad.setdefault(qid, (i, ann, RecordError(f"annotations.{err.field}", err.reason)))
                continue
            index[qid] = (image_id, mc, _SEP.join(texts))
        return index, bad

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.questions, self.root), batch_size)
        subtype = self.data_subtype or _read_subtype(self.questions) or ""
        index, bad_annotations = self._index_annotations(builder)
        seen: set[int] = set()
        for i, q in enumerate(iter_json_items(self.questions, "questions.item", hint=SWAP_HINT.format(
                kind="questions", name="v2_OpenEnded_mscoco_train2014_questions.json"))):
            rid = q.get("question_id") if isinstance(q, dict) else None
            try:
                qid = require_id(q, "question_id")
                if qid in seen:
                    raise RecordError("question_id", f"duplicate question id {qid}")
                seen.add(qid)
                if qid in bad_annotations:
                    _, _, err = bad_annotations.pop(qid)
                    raise err
                image_id = require_id(q, "image_id")
                question = require_text(q, "question")
                if qid not in index:
                    raise RecordError("question_id", "no annotation for this question")
                ann_image, mc, answers = index.pop(qid)
                if ann_image != image_id:
                    raise RecordError("image_id", f"question has image {image_id}, annotation has {ann_image}")
            except RecordError as err:
                field = err.field if err.field.startswith("annotations.") else f"questions.{err.field}"
                builder.quarantine(i, q, rid, RecordError(field, err.reason))
            else:
                rel = f"COCO_{subtype}_{image_id:012d}.jpg" if subtype else f"{image_id:012d}.jpg"
                builder.add_row(
                    str(qid),
                    task=self.task,
                    image_id=str(image_id),
                    image_path=f"{subtype}/{rel}" if subtype else rel,
                    text_en=question,
                    answer_en=mc,
                    answers_en=answers.split(_SEP),
                )
            if builder.full():
                yield builder.flush()
        # Annotations whose question never appeared are input records too: quarantine, never drop.
        annotations_file = relative_source_file(self.annotations, self.root)
        for qid, (image_id, mc, _) in index.items():
            if qid in seen:
                continue  # its question was read (and quarantined): already counted once
            record = {"question_id": qid, "image_id": image_id, "multiple_choice_answer": mc}
            builder.quarantine(-1, record, qid, RecordError("annotations.question_id", "annotation without a question"),
                               source_file=annotations_file)
        for qid, (i, ann, err) in bad_annotations.items():
            builder.quarantine(i, ann, qid, err, source_file=annotations_file)
        yield from builder.drain()


class Vqav2Source(SourceBase):
    """``type: vqav2``: the official questions and annotations files."""

    type: Literal["vqav2"] = "vqav2"
    questions: Path  # v2_OpenEnded_mscoco_*_questions.json
    annotations: Path  # v2_mscoco_*_annotations.json

    def ingest_params(self, work_dir: str | Path) -> dict:
        return {"questions": str(self.questions), "annotations": str(self.annotations)}

    def open_reader(self, work_dir: str | Path) -> Vqav2Reader:
        return Vqav2Reader(self.questions, self.annotations, name=self.source_name)


class Vqav2VqgSource(SourceBase):
    """``type: vqav2_vqg``: the VQAv2 files read for question generation (the answer in the prompt)."""

    type: Literal["vqav2_vqg"] = "vqav2_vqg"
    questions: Path  # as vqav2
    annotations: Path

    def open_reader(self, work_dir: str | Path) -> Vqav2Reader:
        return Vqav2Reader(self.questions, self.annotations, name=self.source_name, task=TASK_VQG)

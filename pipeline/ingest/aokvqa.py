"""A-OKVQA reader: the official ``aokvqa_v1p0_{train,val}.json`` files, as explanation and
chain-of-thought examples.

Format (allenai/aokvqa): a JSON list of ``{"split", "image_id", "question_id", "question",
"choices", "correct_choice_idx", "direct_answers", "difficult_direct_answer", "rationales"}``;
``image_id`` is a COCO 2017 id. mBLIP (Geigle et al. 2024, Sec. 3.1) made one example per rationale
(usually 3) for each of two tasks: *explain* (question and answer in the prompt, the rationale is the
target) and *chain of thought* (question in the prompt, rationale and answer in the target). Rows
carry the rationale as ``text_en``, the question as ``context_en`` and ``choices[correct_choice_idx]``
as ``answer_en``. The reference kept A-OKVQA English: rows are ``preset_lang="en"`` unless
``translate`` is set, then they are assigned a language and translated like any other row.

Record unit: one (question, task, rationale) example, ``source_record_id`` = ``qid:task:r``. A bad
question (missing field, answer index out of range, no image file) quarantines each of its examples, and
so does a question about a POPE evaluation image (``pipeline/ingest/pope.py``: reason ``pope_image``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import field_validator

from pipeline.ingest.base import (
    BatchBuilder,
    ReadBatch,
    RecordError,
    check_file,
    relative_source_file,
    require,
    require_id,
    require_text,
)
from pipeline.ingest.coco import iter_json_items
from pipeline.ingest.coco_images import CocoImageResolver
from pipeline.ingest.pope import PopeExclusion, as_path_list
from pipeline.ingest.source import SourceBase
from pipeline.languages import SOURCE_LANGUAGE
from pipeline.schema import TASK_AOKVQA_COT, TASK_AOKVQA_EXPLAIN

AOKVQA_TASKS = (TASK_AOKVQA_EXPLAIN, TASK_AOKVQA_COT)


class AokvqaReader:
    def __init__(
        self,
        path: str | Path,
        images: str | Path,
        name: str = "aokvqa",
        tasks: tuple[str, ...] = AOKVQA_TASKS,
        translate: bool = False,
        pope: PopeExclusion | None = None,
    ):
        self.path = check_file(path)
        self.name = name
        unknown = sorted(set(tasks) - set(AOKVQA_TASKS))
        if unknown or not tasks:
            raise ValueError(f"aokvqa tasks must be among {list(AOKVQA_TASKS)}; got {list(tasks)}")
        self.tasks = tuple(tasks)
        self.translate = translate
        self.resolver = CocoImageResolver(images)
        self.pope = pope or PopeExclusion(enabled=False)
        self.stats = self.pope.stats() if pope is not None else {}

    def _parse(self, record) -> tuple:
        qid = require(record, "question_id", (str, int))
        question = require_text(record, "question")
        choices = require(record, "choices", list)
        idx = require_id(record, "correct_choice_idx")
        if idx >= len(choices):
            raise RecordError("correct_choice_idx", f"index {idx} but only {len(choices)} choices")
        answer = require_text({"choice": choices[idx]}, "choice")
        image_id = require_id(record, "image_id")
        self.pope.check(image_id)
        rationales = require(record, "rationales", list)
        if not rationales:
            raise RecordError("rationales", "no rationales: there is no target without one")
        direct = record.get("direct_answers") or []
        if not isinstance(direct, list) or not all(isinstance(a, str) for a in direct):
            raise RecordError("direct_answers", "expected a list of strings")
        image = self.resolver.resolve(image_id)
        if image is None:
            raise RecordError(
                "image_id", f"no image file for COCO id {image_id} (looked for {self.resolver.tried(image_id)})"
            )
        return (
            str(qid),
            image_id,
            question,
            answer,
            rationales,
            [" ".join(a.split()) for a in direct if a.strip()],
            image,
        )

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, None), batch_size)
        seen: set[str] = set()
        items = iter_json_items(self.path, "item", hint="expected the JSON list of aokvqa_v1p0_*.json")
        for index, record in enumerate(items):
            rid = record.get("question_id") if isinstance(record, dict) else None
            n_rationales = (
                len(record["rationales"])
                if isinstance(record, dict) and isinstance(record.get("rationales"), list)
                else 1
            )
            try:
                qid, image_id, question, answer, rationales, direct, image = self._parse(record)
                if qid in seen:
                    raise RecordError("question_id", f"duplicate question id {qid}")
                seen.add(qid)
            except RecordError as err:
                for task in self.tasks:
                    for r in range(max(1, n_rationales)):
                        builder.quarantine(index, record, f"{rid}:{task}:{r}", err)
                if builder.full():
                    yield builder.flush()
                continue
            for task in self.tasks:
                for r, rationale in enumerate(rationales):
                    try:
                        text = require_text({f"rationales[{r}]": rationale}, f"rationales[{r}]")
                    except RecordError as err:
                        builder.quarantine(index, record, f"{qid}:{task}:{r}", err)
                        continue
                    builder.add_row(
                        f"{qid}:{task}:{r}",
                        task=task,
                        image_id=str(image_id),
                        image_path=image,
                        text_en=text,
                        context_en=question,
                        answer_en=answer,
                        answers_en=direct or [answer],
                        preset_lang=None if self.translate else SOURCE_LANGUAGE,
                    )
            if builder.full():
                yield builder.flush()
        yield from builder.drain()


class AokvqaSource(SourceBase):
    """``type: aokvqa``: an official A-OKVQA file."""

    type: Literal["aokvqa"] = "aokvqa"
    path: Path  # aokvqa_v1p0_*.json
    tasks: tuple[str, ...] = ()  # aokvqa_explain and/or aokvqa_cot; empty = both
    translate: bool = False  # translate like other sources (the paper kept A-OKVQA English)
    # POPE annotation files (coco_pope_*.json) or folders holding them: questions about a POPE evaluation
    # image are quarantined (pope_image), so POPE stays zero-shot. () = none given (nothing left out).
    pope: tuple[Path, ...] = ()
    exclude_pope_images: bool = True  # false: keep them (the reference did not check)

    @field_validator("pope", mode="before")
    @classmethod
    def _one_or_more(cls, value):
        return as_path_list(value)

    @property
    def fixed_language(self) -> bool:
        return not self.translate

    def open_reader(self, work_dir: str | Path) -> AokvqaReader:
        return AokvqaReader(self.path, self.images, name=self.source_name, tasks=tuple(self.tasks) or AOKVQA_TASKS,
                            translate=self.translate,
                            pope=PopeExclusion.from_config(self.pope, self.exclude_pope_images))

"""LLaVA-Instruct reader: the official ``detail_23k.json`` and ``conversation_58k.json``.

Format (liuhaotian/LLaVA-Instruct-150K): a JSON list of ``{"id", "image", "conversations": [{"from":
"human"|"gpt", "value"}, ...]}``; ``image`` is a COCO 2017 file name. As in mBLIP (Geigle et al. 2024,
Sec. 3.1; the reference's ``data/llava/generate_train.py``) every human turn with the gpt turn after it
becomes its own single-turn example (no history) and ``<image>`` is removed. The length limit is the
reference's rule for *conversation* turns only: a turn whose answer has more than 3 sentences is not
used; *detail* descriptions (``detail_23k.json``, one long description per image) have no limit.
``kind`` says which file it is (``auto``: by its name), ``max_sentences`` overrides the limit for both.
Sentences are counted with spaCy's sentencizer (``pipeline/ingest/sentences.py``), not by counting
periods as the reference did. Rows carry the instruction as ``context_en`` and the answer as
``text_en``: both are translated. Image names resolve to the file that exists (a 2014 or 2017 folder):
the reference named every image ``COCO_train2014_<id>``, which does not exist for the val2014 ones; a
record whose image is missing is quarantined, and so is one whose image is a POPE evaluation image
(``pipeline/ingest/pope.py``: reason ``pope_image``).

Record unit: one human/gpt pair, ``source_record_id`` = ``id:pair``. A bad pair (wrong roles,
empty text, too long an answer) is quarantined on its own; a bad conversation quarantines one record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pipeline.ingest.base import (
    BatchBuilder,
    ReadBatch,
    RecordError,
    check_file,
    relative_source_file,
    require,
    safe_image_path,
)
from pipeline.ingest.coco import iter_json_items
from pipeline.ingest.coco_images import CocoImageResolver, coco_id_from_name
from pipeline.ingest.pope import PopeExclusion, as_path_list
from pipeline.ingest.sentences import count_sentences
from pipeline.ingest.source import SourceBase
from pipeline.schema import TASK_LLAVA

IMAGE_TOKEN = re.compile(r"\s*<image>\s*")
MAX_SENTENCES = 3  # the paper's limit on LLaVA conversation answers (detail descriptions: none)
KIND_AUTO, KIND_DETAIL, KIND_CONVERSATION = "auto", "detail", "conversation"


def file_kind(path: str | Path, kind: str = KIND_AUTO) -> str:
    """``detail`` or ``conversation``; ``auto``: a file whose name holds "detail" (``detail_23k.json``) is
    detail descriptions, any other (``conversation_58k.json``, ``complex_reasoning_77k.json``) turns."""
    if kind != KIND_AUTO:
        return kind
    return KIND_DETAIL if "detail" in Path(path).name.lower() else KIND_CONVERSATION


def sentence_limit(kind: str, max_sentences: int | None) -> int:
    """The longest answer used, in sentences (0 = no limit): the reference's 3 for conversation turns,
    none for detail descriptions, unless ``max_sentences`` says otherwise."""
    if max_sentences is not None:
        return max_sentences
    return 0 if kind == KIND_DETAIL else MAX_SENTENCES


def clean_turn(text: str) -> str:
    return " ".join(IMAGE_TOKEN.sub(" ", text).split())


class LlavaInstructReader:
    def __init__(self, path: str | Path, images: str | Path, name: str = "llava", max_sentences: int | None = None,
                 kind: str = KIND_AUTO, pope: PopeExclusion | None = None):
        self.path = check_file(path)
        self.name = name
        self.images = Path(images)
        self.kind = file_kind(self.path, kind)
        self.max_sentences = sentence_limit(self.kind, max_sentences)  # 0 = no limit
        self.resolver = CocoImageResolver(images)
        self.pope = pope or PopeExclusion(enabled=False)
        self.stats = self.pope.stats() if pope is not None else {}

    def _image(self, record) -> str:
        name = require(record, "image", str)
        coco_id = coco_id_from_name(name)
        self.pope.check(coco_id, "image")
        if coco_id is not None and (found := self.resolver.resolve(coco_id)):
            return found
        rel = safe_image_path(name, "image")
        if (self.images / rel).is_file():
            return rel
        tried = self.resolver.tried(coco_id) if coco_id is not None else rel
        raise RecordError("image", f"no image file for {name!r} (looked for {tried})")

    def _pair(self, turns: list, i: int) -> tuple[str, str]:
        human, gpt = turns[i], turns[i + 1] if i + 1 < len(turns) else None
        for j, turn, role in ((i, human, "human"), (i + 1, gpt, "gpt")):
            if turn is None:
                raise RecordError(f"conversations[{j}]", f"missing {role} turn")
            if not isinstance(turn, dict) or turn.get("from") != role:
                got = turn.get("from") if isinstance(turn, dict) else type(turn).__name__
                raise RecordError(f"conversations[{j}].from", f"expected {role!r}, got {got!r}")
            if not isinstance(turn.get("value"), str) or not clean_turn(turn["value"]):
                raise RecordError(f"conversations[{j}].value", "empty or missing text")
        answer = clean_turn(gpt["value"])
        n = count_sentences(answer)
        if self.max_sentences and n > self.max_sentences:
            raise RecordError(
                f"conversations[{i + 1}].value",
                f"answer has {n} sentences, more than {self.max_sentences} (the paper's limit on {self.kind} turns)",
            )
        return clean_turn(human["value"]), answer

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        builder = BatchBuilder(self.name, relative_source_file(self.path, None), batch_size)
        seen: set[str] = set()
        items = iter_json_items(self.path, "item", hint="expected the JSON list of LLaVA-Instruct")
        for index, record in enumerate(items):
            rid = record.get("id") if isinstance(record, dict) else None
            try:
                conv_id = str(require(record, "id", (str, int)))
                if conv_id in seen:
                    raise RecordError("id", f"duplicate id {conv_id}")
                seen.add(conv_id)
                turns = require(record, "conversations", list)
                if not turns:
                    raise RecordError("conversations", "no turns")
                image = self._image(record)
            except RecordError as err:
                builder.quarantine(index, record, rid, err)
                if builder.full():
                    yield builder.flush()
                continue
            for pair, i in enumerate(range(0, len(turns), 2)):
                try:
                    instruction, answer = self._pair(turns, i)
                except RecordError as err:
                    builder.quarantine(index, turns[i : i + 2], f"{conv_id}:{pair}", err)
                    continue
                coco_id = coco_id_from_name(image)
                builder.add_row(
                    f"{conv_id}:{pair}",
                    task=TASK_LLAVA,
                    image_id=str(coco_id if coco_id is not None else image),
                    image_path=image,
                    text_en=answer,
                    context_en=instruction,
                )
            if builder.full():
                yield builder.flush()
        yield from builder.drain()


class LlavaSource(SourceBase):
    """``type: llava``: an official LLaVA-Instruct file."""

    type: Literal["llava"] = "llava"
    path: Path  # detail_23k.json or conversation_58k.json
    # detail (one description per image, no length limit) or conversation (turns, at most 3 sentences);
    # auto = by the file's name ("detail" in it: detail)
    kind: Literal["auto", "detail", "conversation"] = KIND_AUTO
    # Longest answer used, in sentences (spaCy). null = the paper's rule: 3 for conversation turns, no
    # limit for detail descriptions; a number applies to either kind; 0 = no limit.
    max_sentences: int | None = Field(None, ge=0)
    # POPE annotation files (coco_pope_*.json) or folders holding them: records whose COCO image is a POPE
    # evaluation image are quarantined (pope_image), so POPE stays zero-shot. () = none given (nothing left out).
    pope: tuple[Path, ...] = ()
    exclude_pope_images: bool = True  # false: keep them (the reference did not check)

    @field_validator("pope", mode="before")
    @classmethod
    def _one_or_more(cls, value):
        return as_path_list(value)

    def open_reader(self, work_dir: str | Path) -> LlavaInstructReader:
        return LlavaInstructReader(self.path, self.images, name=self.source_name, max_sentences=self.max_sentences,
                                   kind=self.kind, pope=PopeExclusion.from_config(self.pope, self.exclude_pope_images))

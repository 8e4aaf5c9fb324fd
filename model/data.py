"""Training data without torch: the pipeline's Parquet output read into (image path, prompt, target) examples.

Reading (edges): ``read_manifest`` finds the kept shards of the requested languages;
``iter_rows`` streams their rows in bounded record batches. Core (plain functions):
``row_to_example`` builds the prompt/target pair, ``ImageAugment`` crops and flips, ``load_image``
opens an image. ``model/loader.py`` tokenises the examples and streams them as batches (torch);
``model/stream.py`` interleaves the shards.

Determinism (needed for exact resume): each example's crop/flip comes from a generator seeded by
(seed, epoch, example_id), not from global state; the hold-out split and the answer-language coin flip
are hashes of ids.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.templates import caption_prompt, vqa_prompt
from pipeline.images.guard import DEFAULT_MAX_PIXELS, open_rgb
from pipeline.filters.scripts import UNSPACED_SCRIPTS
from pipeline.languages import get_language
from pipeline.templates import PROMPT_TASKS

if TYPE_CHECKING:
    from PIL import Image

ROW_COLUMNS = (
    "example_id", "task", "image_id", "image_path", "source", "text_en", "answer_en", "lang", "text_tgt", "answer_tgt",
)
OPTIONAL_COLUMNS = ("prompt", "target")
BUILT_IN_TASKS = ("caption", "vqa")  # rows of these tasks can fall back to model/templates.py without a prompt
READ_BATCH_ROWS = 1024  # rows per Parquet record batch: bounds the memory of one read


# ---------------------------------------------------------------------------------------------------
# Manifest and rows (I/O edge)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    path: Path
    lang: str | None
    rows: int


@dataclass(frozen=True)
class TrainingData:
    """The kept shards of one pipeline output, restricted to a language subset."""

    root: Path
    files: tuple[DataFile, ...]
    image_roots: dict[str, Path] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def read_manifest(location: str | Path, languages: Sequence[str] = ()) -> TrainingData:
    """Kept shards listed in ``manifest.json`` (a directory holding it, or the file itself).

    Extra manifest keys are ignored; rejected and quarantined shards are never training data.
    """
    location = Path(location)
    manifest_path = location / "manifest.json" if location.is_dir() else location
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"no manifest at {manifest_path}: data.manifest must name a finished pipeline output "
            "(the manifest is written last, so a missing one means the run did not complete)"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    root = manifest_path.parent
    wanted = set(languages)
    files = tuple(
        DataFile(path=root / entry["path"], lang=entry.get("lang"), rows=int(entry.get("rows", 0)))
        for entry in manifest.get("files", [])
        if entry.get("split") == "kept" and (not wanted or entry.get("lang") in wanted)
    )
    if not files:
        available = sorted({e.get("lang") for e in manifest.get("files", []) if e.get("split") == "kept"} - {None})
        raise ValueError(
            f"{manifest_path} has no kept shards for data.languages={sorted(wanted) or 'all'}; "
            f"languages with kept shards: {available}"
        )
    image_roots = {name: Path(path) for name, path in (manifest.get("image_roots") or {}).items()}
    return TrainingData(root=root, files=files, image_roots=image_roots)


@functools.lru_cache(maxsize=1)
def known_tasks() -> frozenset[str]:
    """Tasks the trainer can turn into (prompt, target): every task of the pipeline's template table."""
    return frozenset(PROMPT_TASKS)


def check_tasks(data: TrainingData, wanted: Sequence[str] = ()) -> dict[str, int]:
    """Rows per task over the kept shards; fails at start-up on a task the trainer cannot build.

    Reads only the ``task`` column. Raises ``ValueError`` naming the task and the shard, so a run
    fails before its first step rather than hours later inside a loader worker.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    known = known_tasks()
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise ValueError(f"data.tasks names unknown task(s) {unknown}; known: {sorted(known)}")
    counts: dict[str, int] = {}
    for f in data.files:
        column = pq.read_table(f.path, columns=["task"]).column("task")
        for item in pc.value_counts(column).to_pylist():
            task, n = item["values"], item["counts"]
            if task not in known:
                raise ValueError(f"{f.path}: task {task!r} ({n} rows) is not one the trainer knows "
                                 f"({sorted(known)}); regenerate the data or set data.tasks to leave it out")
            counts[task] = counts.get(task, 0) + n
    return {t: n for t, n in sorted(counts.items()) if not wanted or t in wanted}


def iter_rows(paths: Sequence[Path], batch_rows: int = READ_BATCH_ROWS) -> Iterator[dict[str, Any]]:
    """Rows of Parquet files as dicts, one bounded record batch in memory at a time."""
    import pyarrow.parquet as pq

    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: shard listed in the manifest is gone (was the output changed during "
                                    "training?); check it with mblip verify OUT, regenerate it, then resume")
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        columns = [c for c in ROW_COLUMNS + OPTIONAL_COLUMNS if c in names]
        missing = [c for c in ROW_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{path} lacks columns {missing}; is it a kept shard of the data pipeline?")
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            yield from batch.to_pylist()


def count_training_rows(data: TrainingData, tasks: Sequence[str] = (), sources: Sequence[str] = (),
                        val_fraction: float = 0.0) -> int:
    """Rows one training epoch streams: the selected tasks and sources, held-out images excluded.

    The manifest only counts rows per file, so the task, source and image_id columns are read (a few
    seconds for millions of rows); without a filter or hold-out the manifest's counts are exact.
    """
    import pyarrow.parquet as pq

    if not tasks and not sources and val_fraction <= 0:
        return data.rows
    total = 0
    for file in data.files:
        parquet = pq.ParquetFile(file.path)
        for batch in parquet.iter_batches(batch_size=65536, columns=["task", "source", "image_id"]):
            columns = batch.to_pydict()
            for task, source, image_id in zip(columns["task"], columns["source"], columns["image_id"]):
                if (tasks and task not in tasks) or (sources and source not in sources):
                    continue
                total += not is_validation(image_id, val_fraction)
    return total


# ---------------------------------------------------------------------------------------------------
# Examples (core)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    example_id: str
    image_path: Path
    prompt: str
    target: str
    # Characters [start, end) of the prompt's free text (the question): a prompt over the token limit
    # is cut there, so the instruction naming the output language survives. None = cut at the end.
    text_span: tuple[int, int] | None = None
    # Between prompt and target of a decoder-only LLM: a space, or nothing for scripts written without
    # spaces (Chinese, Japanese, Thai, ...), where a space would be an extra token inside the text.
    separator: str = " "
    task: str = ""


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) from a string (for hold-out splits and coin flips)."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2**64


def is_validation(image_id: str, fraction: float) -> bool:
    """Hold out by image, not by row: no image is seen in both training and validation."""
    return fraction > 0 and hash_fraction(f"val\x1f{image_id}") < fraction


def row_to_example(row: dict[str, Any], image_roots: dict[str, Path], english_answer_prob: float = 0.0) -> Example:
    """Prompt and target for one row.

    Caption: target = translated caption. VQA: prompt = the (translated) question in an instruction,
    target = the translated answer, or the English one when there is none (mBLIP kept only answers
    whose back-translation matched, and picked the answer language by a coin flip; here the flip is
    a hash of the example id, so it is reproducible). A ``prompt`` column, when the pipeline provides
    translated instructions, replaces the English template (for VQA it already holds the question).
    """
    lang = row["lang"]
    key = row["example_id"]
    task = row["task"]
    if task == "caption":
        target = row["text_tgt"] or row["text_en"]
        target_lang = lang if row["text_tgt"] else "en"
        prompt = row.get("prompt") or caption_prompt(lang, key)
    elif task == "vqa":
        question = row["text_tgt"] or row["text_en"]
        # The flip only matters where a translated answer exists; when it picks English the prompt asks
        # for an English answer (mBLIP's rule), so prompt and target always agree.
        translated = bool(row["answer_tgt"]) and row["answer_tgt"] != row["answer_en"]
        if translated and hash_fraction(f"answer\x1f{key}") < english_answer_prob:
            target, target_lang = row["answer_en"], "en"
            prompt = vqa_prompt(question, lang, key, english_answer=True)
        else:
            target = row["answer_tgt"] or row["answer_en"]
            target_lang = lang if row["answer_tgt"] else "en"
            prompt = row.get("prompt") or vqa_prompt(question, lang, key, english_answer=not row["answer_tgt"])
    elif task not in known_tasks():
        raise ValueError(f"row {key}: unknown task {task!r} (known: {sorted(known_tasks())})")
    elif row.get("prompt") and row.get("target"):
        # Every other task: the pipeline made prompt and target from its template table.
        prompt, target, target_lang = row["prompt"], row["target"], lang
    else:
        raise ValueError(f"row {key}: task {task!r} needs the pipeline's prompt and target columns; "
                         f"only {list(BUILT_IN_TASKS)} rows can do without them")
    root = image_roots.get(row["source"])
    image_path = Path(row["image_path"])
    if root is not None:
        image_path = root / image_path
    span = None
    if task == "vqa" and (start := prompt.find(question)) >= 0:
        span = (start, start + len(question))
    return Example(example_id=key, image_path=image_path, prompt=prompt, target=target, text_span=span,
                   separator=target_separator(target_lang), task=task)


def target_separator(lang: str) -> str:
    """A space before a target in ``lang``; none for scripts written without spaces between words."""
    return "" if get_language(lang).script in UNSPACED_SCRIPTS else " "


class ImageAugment:
    """RandomResizedCrop (area ``scale``, aspect 3/4..4/3) and horizontal flip, as in mBLIP training.

    Uses the torchvision algorithm on PIL images; the generator is passed in so that each example's
    crop is reproducible. Output is a ``size`` x ``size`` RGB image.
    """

    def __init__(self, size: int, scale: tuple[float, float], hflip: bool):
        self.size = size
        self.scale = scale
        self.hflip = hflip

    def crop_box(self, width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
        area = width * height
        log_ratio = (math.log(3 / 4), math.log(4 / 3))
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            ratio = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target_area * ratio))
            h = round(math.sqrt(target_area / ratio))
            if 0 < w <= width and 0 < h <= height:
                left = rng.randint(0, width - w)
                top = rng.randint(0, height - h)
                return left, top, left + w, top + h
        side = min(width, height)  # fallback: central square crop
        left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    def __call__(self, image: Image.Image, rng: random.Random) -> Image.Image:
        from PIL import Image as PILImage

        image = image.crop(self.crop_box(*image.size, rng)).resize((self.size, self.size), PILImage.BICUBIC)
        if self.hflip and rng.random() < 0.5:
            image = image.transpose(PILImage.FLIP_LEFT_RIGHT)
        return image


def load_image(path: Path) -> Image.Image:
    """RGB; an image over ``DEFAULT_MAX_PIXELS`` is refused (``ImageTooLarge``, a ValueError) before decoding."""
    return open_rgb(path, DEFAULT_MAX_PIXELS)

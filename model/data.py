"""Training data without torch: the pipeline's Parquet output read into (image path, prompt, target) examples.

Reading (edges): ``read_manifest`` finds the kept shards of the requested languages;
``iter_rows`` streams their rows in bounded record batches. Core (plain functions):
``row_to_example`` builds the prompt/target pair, ``ImageAugment`` crops and flips, ``load_image``
opens an image. ``model/loader.py`` tokenises the examples and streams them as batches (torch);
``model/stream.py`` interleaves the shards.

Determinism (needed for exact resume): each example's crop/flip comes from a generator seeded by
(seed, epoch, example_id), not from global state; the hold-out split and the answer-language coin flip
are hashes of ids. The validation hold-out is a number of rows (``select_validation_rows``; mBLIP held out
500 rows of its mix) or, the former rule, a fraction of images (``is_validation``).
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
from model.wds import iter_tar_rows
from pipeline.io import is_url, join_location, open_location
from pipeline.outputs.images import IMAGE_COLUMN
from pipeline.languages import get_language
from pipeline.templates import PROMPT_TASKS

if TYPE_CHECKING:
    from PIL import Image

ROW_COLUMNS = (
    "example_id", "task", "image_id", "image_path", "source", "text_en", "answer_en", "lang", "text_tgt", "answer_tgt",
)
OPTIONAL_COLUMNS = ("prompt", "target", "answer_translated")
# The images after ``image_path``, in order: a list column of the task fine-tuning's NLVR2 rows (the right image).
# Pipeline outputs, and so their webdataset export (one image per sample), have one image per row.
EXTRA_IMAGES_COLUMN = "extra_images"
# Tasks of the task fine-tuning recipes (model/finetune/): their rows carry their own prompt and target.
FINETUNE_TASKS = frozenset({"gqa", "snli_ve", "nlvr2", "flickr30k"})
# Between the prompt and the target of a decoder-only LLM (``data.target_separator``): "none" = the ids follow
# each other directly, as in mBLIP (prompt and target tokenised separately and concatenated); "space" = a
# space before targets in scripts written with spaces, so the first target word is tokenised as in text.
TARGET_SEPARATORS = ("none", "space")
BUILT_IN_TASKS = ("caption", "vqa")  # rows of these tasks can fall back to model/templates.py without a prompt
READ_BATCH_ROWS = 1024  # rows per Parquet record batch: bounds the memory of one read


# ---------------------------------------------------------------------------------------------------
# Manifest and rows (I/O edge)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFile:
    path: Path | str  # a Parquet shard or a webdataset tar; a str when it is an fsspec URL
    lang: str | None
    rows: int
    sha256: str | None = None  # as the manifest records it; the trainer checks each shard against it
    bytes: int | None = None
    tasks: dict[str, int] | None = None  # rows per task when the manifest records them (webdataset shards)


@dataclass(frozen=True)
class TrainingData:
    """The kept shards of one pipeline output, restricted to a language subset."""

    root: Path
    files: tuple[DataFile, ...]
    image_roots: dict[str, Path | str] = field(default_factory=dict)  # a folder, or an fsspec URL

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def read_manifest(location: str | Path, languages: Sequence[str] = ()) -> TrainingData:
    """Kept shards listed in ``manifest.json`` (a directory holding it, or the file itself; either may be an
    fsspec URL): a pipeline output's Parquet shards, or the tar shards of its webdataset export (``"format":
    "webdataset"``, see ``pipeline/export_webdataset.py``).

    Extra manifest keys are ignored; rejected and quarantined shards are never training data.
    """
    manifest, root, manifest_path = _load_manifest(location)
    wanted = set(languages)
    webdataset = manifest.get("format") == "webdataset"
    files = tuple(
        DataFile(path=join_location(root, entry["path"]), lang=entry.get("lang"), rows=int(entry.get("rows", 0)),
                 sha256=entry.get("sha256"), bytes=entry.get("bytes"), tasks=entry.get("tasks") if webdataset else None)
        for entry in manifest.get("files", [])
        if (webdataset or entry.get("split") == "kept") and (not wanted or entry.get("lang") in wanted)
    )
    if not files:
        available = sorted({e.get("lang") for e in manifest.get("files", []) if e.get("split") == "kept"} - {None})
        raise ValueError(
            f"{manifest_path} has no kept shards for data.languages={sorted(wanted) or 'all'}; "
            f"languages with kept shards: {available}"
        )
    image_roots = {name: path if is_url(path) else Path(path)
                   for name, path in (manifest.get("image_roots") or {}).items()}
    return TrainingData(root=root, files=files, image_roots=image_roots)


def _load_manifest(location: str | Path) -> tuple[dict, str | Path, str | Path]:
    """(manifest, root its paths are relative to, its own location), local or at an fsspec URL."""
    if is_url(str(location)):
        location = str(location).rstrip("/")
        manifest_path = location if location.endswith(".json") else f"{location}/manifest.json"
        root = manifest_path.rsplit("/", 1)[0]
        try:
            with open_location(manifest_path, "rb") as handle:
                return json.loads(handle.read()), root, manifest_path
        except FileNotFoundError:
            pass
    else:
        location = Path(location)
        manifest_path = location / "manifest.json" if location.is_dir() else location
        if manifest_path.is_file():
            return json.loads(manifest_path.read_text(encoding="utf-8")), manifest_path.parent, manifest_path
    raise FileNotFoundError(
        f"no manifest at {manifest_path}: data.manifest must name a finished pipeline output or its webdataset "
        "export (the manifest is written last, so a missing one means the run did not complete)"
    )


@functools.lru_cache(maxsize=1)
def known_tasks() -> frozenset[str]:
    """Tasks the trainer can turn into (prompt, target): every task of the pipeline's template table and of the
    task fine-tuning recipes."""
    return frozenset(PROMPT_TASKS) | FINETUNE_TASKS


def check_tasks(data: TrainingData, wanted: Sequence[str] = ()) -> dict[str, int]:
    """Rows per task over the kept shards; fails at start-up on a task the trainer cannot build.

    Reads only the ``task`` column. Raises ``ValueError`` naming the task and the shard, so a run
    fails before its first step rather than hours later inside a loader worker.
    """
    import pyarrow.compute as pc

    known = known_tasks()
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise ValueError(f"data.tasks names unknown task(s) {unknown}; known: {sorted(known)}")
    counts: dict[str, int] = {}
    for f in data.files:
        if f.tasks is not None:  # recorded by the webdataset export
            items = [{"values": task, "counts": n} for task, n in f.tasks.items()]
        else:
            items = pc.value_counts(open_parquet(f.path).read(columns=["task"]).column("task")).to_pylist()
        for item in items:
            task, n = item["values"], item["counts"]
            if task not in known:
                raise ValueError(f"{f.path}: task {task!r} ({n} rows) is not one the trainer knows "
                                 f"({sorted(known)}); regenerate the data or set data.tasks to leave it out")
            counts[task] = counts.get(task, 0) + n
    return {t: n for t, n in sorted(counts.items()) if not wanted or t in wanted}


def iter_rows(paths: Sequence[Path], batch_rows: int = READ_BATCH_ROWS) -> Iterator[dict[str, Any]]:
    """Rows of Parquet files as dicts, one bounded record batch in memory at a time."""
    for path in paths:
        if str(path).endswith(".tar"):  # a webdataset shard: rows with their image bytes
            yield from iter_tar_rows(path)
            continue
        if not is_url(path) and not Path(path).is_file():
            raise FileNotFoundError(f"{path}: shard listed in the manifest is gone (was the output changed during "
                                    "training?); check it with mblip verify OUT, regenerate it, then resume")
        parquet = open_parquet(path)
        names = set(parquet.schema_arrow.names)
        columns = [c for c in ROW_COLUMNS + OPTIONAL_COLUMNS + (EXTRA_IMAGES_COLUMN, IMAGE_COLUMN) if c in names]
        missing = [c for c in ROW_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{path} lacks columns {missing}; is it a kept shard of the data pipeline?")
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
            for row in batch.to_pylist():
                embedded = row.pop(IMAGE_COLUMN, None)  # output.images: embed
                if embedded and embedded.get("bytes") is not None:
                    row["image_bytes"] = embedded["bytes"]
                yield row


def open_parquet(path: Path | str):
    """A ``pyarrow.parquet.ParquetFile`` of a local file or an fsspec URL."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(open_location(path) if is_url(path) else path)


def count_training_rows(data: TrainingData, tasks: Sequence[str] = (), sources: Sequence[str] = (),
                        val_fraction: float = 0.0, val_ids: frozenset[str] = frozenset()) -> int:
    """Rows one training epoch streams: the selected tasks and sources, held-out rows excluded.

    The manifest only counts rows per file, so the task, source and image_id columns are read (a few
    seconds for millions of rows); without a filter or hold-out the manifest's counts are exact.
    ``val_ids`` (from ``select_validation_rows`` over the same selection) are always selected rows.
    """
    if not tasks and not sources and val_fraction <= 0:
        return data.rows - len(val_ids)
    total = 0
    for file in data.files:
        if str(file.path).endswith(".tar"):  # a webdataset shard has no columns to read alone: scan it
            batches = [{k: [r[k] for r in iter_tar_rows(file.path)] for k in ("task", "source", "image_id")}]
        else:
            batches = (b.to_pydict() for b in open_parquet(file.path).iter_batches(
                batch_size=65536, columns=["task", "source", "image_id"]))
        for columns in batches:
            for task, source, image_id in zip(columns["task"], columns["source"], columns["image_id"]):
                if (tasks and task not in tasks) or (sources and source not in sources):
                    continue
                total += not is_validation(image_id, val_fraction)
    return total - len(val_ids)


def select_validation_rows(data: TrainingData, rows: int, tasks: Sequence[str] = (),
                           sources: Sequence[str] = ()) -> frozenset[str]:
    """The example ids of the ``rows`` validation rows (``data.val_rows``; mBLIP held out 500 rows).

    The rows with the smallest hash of their example_id among the selected tasks and sources: the same
    rows whatever the order of the shards or the number of processes, spread over the whole mix (the
    reference took the first 500 rows of its merged file, which were all web captions). Reads the
    example_id, task and source columns once at start-up. Refuses to hold out every row.
    """
    import heapq

    import pyarrow.parquet as pq

    if rows <= 0:
        return frozenset()
    selected = 0

    def keyed_rows():
        nonlocal selected
        for file in data.files:
            parquet = pq.ParquetFile(file.path)
            for batch in parquet.iter_batches(batch_size=65536, columns=["example_id", "task", "source"]):
                columns = batch.to_pydict()
                for example_id, task, source in zip(columns["example_id"], columns["task"], columns["source"]):
                    if (tasks and task not in tasks) or (sources and source not in sources):
                        continue
                    selected += 1
                    yield hash_key(f"val\x1f{example_id}"), example_id

    chosen = heapq.nsmallest(rows, keyed_rows())
    if selected <= rows:
        raise ValueError(f"data.val_rows={rows} would hold out all {selected} selected training rows of "
                         f"{data.root}; lower it (0 = no validation rows)")
    return frozenset(example_id for _, example_id in chosen)


# ---------------------------------------------------------------------------------------------------
# Examples (core)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    example_id: str
    image_path: Path | str  # a local file, or an fsspec URL (an image root at a URL)
    prompt: str
    target: str
    # Characters [start, end) of the prompt's free text (the question): a prompt over the token limit
    # is cut there, so the instruction naming the output language survives. None = cut at the end.
    text_span: tuple[int, int] | None = None
    # Between prompt and target of a decoder-only LLM (see TARGET_SEPARATORS): nothing, or a space before
    # a target in a script written with spaces.
    separator: str = ""
    task: str = ""
    target_lang: str = ""  # the target's language: a VQA answer that stayed English is "en" in any row
    # Images after ``image_path``, in order (NLVR2: the right image). Each goes through ViT and Q-Former on its
    # own and takes its own ``num_query_tokens`` placeholders, as the MaRVL evaluation does.
    extra_image_paths: tuple[Path | str, ...] = ()

    @property
    def image_paths(self) -> tuple[Path | str, ...]:
        return (self.image_path, *self.extra_image_paths)


def hash_key(key: str) -> bytes:
    """8 stable bytes from a string; they sort as ``hash_fraction`` does (and faster)."""
    return hashlib.sha1(key.encode()).digest()[:8]


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) from a string (for hold-out splits and coin flips)."""
    return int.from_bytes(hash_key(key), "big") / 2**64


def is_validation(image_id: str, fraction: float) -> bool:
    """Hold out by image (``data.val_fraction``): no image is seen in both training and validation."""
    return fraction > 0 and hash_fraction(f"val\x1f{image_id}") < fraction


def is_held_out(row: dict[str, Any], val_ids: frozenset[str], val_fraction: float) -> bool:
    """Whether a row is validation data: one of the selected validation rows, or of a held-out image."""
    return row["example_id"] in val_ids or is_validation(row["image_id"], val_fraction)


def row_to_example(row: dict[str, Any], image_roots: dict[str, Path | str], english_answer_prob: float = 0.0,
                   target_separator: str = "none") -> Example:
    """Prompt and target for one row.

    Caption: target = translated caption. VQA: prompt = the (translated) question in an instruction,
    target = the translated answer, or the English one when the answer stayed English (mBLIP kept only
    answers whose back-translation matched, and picked the answer language by a coin flip; here the flip
    is a hash of the example id, so it is reproducible). A ``prompt`` column, when the pipeline provides
    translated instructions, replaces the English template (for VQA it already holds the question).
    ``target_separator``: see ``TARGET_SEPARATORS``.
    """
    if target_separator not in TARGET_SEPARATORS:
        raise ValueError(f"data.target_separator={target_separator!r}: choose one of {', '.join(TARGET_SEPARATORS)}")
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
        in_lang = answer_in_row_language(row)
        if in_lang and lang != "en" and hash_fraction(f"answer\x1f{key}") < english_answer_prob:
            target, target_lang = row["answer_en"], "en"
            prompt = vqa_prompt(question, lang, key, english_answer=True)
        else:
            target = row["answer_tgt"] or row["answer_en"]
            target_lang = lang if in_lang else "en"
            prompt = row.get("prompt") or vqa_prompt(question, lang, key, english_answer=not in_lang)
    elif task not in known_tasks():
        raise ValueError(f"row {key}: unknown task {task!r} (known: {sorted(known_tasks())})")
    elif row.get("prompt") and row.get("target"):
        # Every other task: the pipeline made prompt and target from its template table.
        prompt, target, target_lang = row["prompt"], row["target"], lang
    else:
        raise ValueError(f"row {key}: task {task!r} needs the pipeline's prompt and target columns; "
                         f"only {list(BUILT_IN_TASKS)} rows can do without them")
    root = image_roots.get(row["source"])
    image_path, *extra = [Path(p) if root is None else join_location(root, p)
                          for p in (row["image_path"], *(row.get(EXTRA_IMAGES_COLUMN) or ()))]
    span = None
    if task == "vqa" and (start := prompt.find(question)) >= 0:
        span = (start, start + len(question))
    separator = spaced_separator(target_lang) if target_separator == "space" else ""
    return Example(example_id=key, image_path=image_path, prompt=prompt, target=target, text_span=span,
                   separator=separator, task=task, target_lang=target_lang, extra_image_paths=tuple(extra))


def answer_in_row_language(row: dict[str, Any]) -> bool:
    """Whether a VQA row's answer is in the row's language: the pipeline's ``answer_translated`` (false when
    the English answer was kept, e.g. a rare answer), else a translated answer differing from the English one."""
    flag = row.get("answer_translated")
    if flag is not None:
        return bool(flag)
    return bool(row["answer_tgt"]) and (row["lang"] == "en" or row["answer_tgt"] != row["answer_en"])


def spaced_separator(lang: str) -> str:
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


def load_row_image(row: dict[str, Any], example: Example) -> Image.Image:
    """The row's image: its own bytes (a webdataset sample, an embedded column), else the file it names; an
    image over ``DEFAULT_MAX_PIXELS`` is refused (``ImageTooLarge``, a ValueError) before decoding."""
    if row.get("image_bytes") is not None:
        from io import BytesIO

        return open_rgb(BytesIO(row["image_bytes"]), DEFAULT_MAX_PIXELS)
    return load_image(example.image_path)


def load_row_images(row: dict[str, Any], example: Example) -> list[Image.Image]:
    """Every image of the row, in order: ``load_row_image``, then the files of ``extra_image_paths``."""
    return [load_row_image(row, example), *(load_image(path) for path in example.extra_image_paths)]


def load_image(path: Path | str) -> Image.Image:
    """An RGB image from a local file or an fsspec URL; an image over ``DEFAULT_MAX_PIXELS`` is refused
    (``ImageTooLarge``, a ValueError) before decoding."""
    if not is_url(path):
        return open_rgb(path, DEFAULT_MAX_PIXELS)
    with open_location(path, "rb") as handle:
        return open_rgb(handle, DEFAULT_MAX_PIXELS)

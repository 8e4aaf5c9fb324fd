"""Training data: the pipeline's Parquet output, streamed into (image, prompt, target) batches.

Reading (edges): ``read_manifest`` finds the kept shards of the requested languages;
``iter_rows`` streams their rows in bounded record batches. Core (plain functions):
``row_to_example`` builds the prompt/target pair, ``ImageAugment`` crops and flips,
``encode_examples`` tokenises into model inputs. ``ExampleStream`` ties them into an iterable dataset
whose rows are striped over processes and loader workers and shuffled with a bounded buffer.

Determinism (needed for exact resume): the row order depends only on (seed, epoch, shard), and each
example's crop/flip comes from a generator seeded by (seed, epoch, example_id), not from global state.

One module on purpose: reading, examples, tokenisation and the stream share the row layout and are
read together when checking what the model is trained on.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.templates import caption_prompt, vqa_prompt
from pipeline.filters.scripts import UNSPACED_SCRIPTS
from pipeline.languages import get_language

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value the loss skips (padding, prompt positions of decoder-only LLMs)
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
    from pipeline.templates import PROMPT_TASKS

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
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


@dataclass(frozen=True)
class TokenSpec:
    """What ``encode_examples`` needs to know about the model (plain values, no model object)."""

    image_token_index: int
    num_query_tokens: int
    max_length: int  # prompt tokens (excluding the image placeholders)
    decoder_only: bool
    pad_token_id: int
    eos_token_id: int
    max_target_length: int = 128  # target tokens, end token included


def prompt_ids(tokenizer, example: Example, limit: int, add_special_tokens: bool) -> list[int]:
    """Token ids of the prompt, at most ``limit``: excess tokens are removed from the end of the free
    text (``text_span``), so the instruction before and after it is kept; without a span, from the end.
    Special tokens the tokenizer adds (mT5's ``</s>``) are kept."""
    encoded = tokenizer(example.prompt, add_special_tokens=add_special_tokens, return_offsets_mapping=True,
                        return_special_tokens_mask=True)
    ids, offsets, special = encoded["input_ids"], encoded["offset_mapping"], encoded["special_tokens_mask"]
    excess = len(ids) - limit
    if excess <= 0:
        return ids
    start, end = example.text_span or (0, len(example.prompt))
    cuttable = [i for i, (a, b) in enumerate(offsets) if not special[i] and a < end and b > start]
    dropped = set(cuttable[-excess:])
    kept = [i for i in range(len(ids)) if i not in dropped]
    if len(kept) > limit:  # the instruction alone is over the limit: cut its end, keep the added end tokens
        tail = 0
        while tail < len(kept) and special[kept[len(kept) - 1 - tail]]:
            tail += 1
        kept = kept[: max(0, limit - tail)] + kept[len(kept) - tail :]
    return [ids[i] for i in kept]


def encode_examples(tokenizer, examples: Sequence[Example], spec: TokenSpec) -> dict[str, torch.Tensor]:
    """Token ids, attention mask and labels for a batch (right padded).

    Prompt and target are truncated separately, each to its own limit (mBLIP: 128 each).
    Seq2seq (mT0): encoder input = Q image placeholders + prompt (+ </s>), labels = target + </s>;
    the model shifts labels into decoder inputs. This matches what ``Blip2Processor`` produces for
    the prompt, so inference sees the same layout.
    Decoder-only (BLOOMZ): input = Q placeholders + prompt + separator + target + eos; labels copy the
    target positions and ignore placeholders and prompt.
    """
    import torch

    image_ids = [spec.image_token_index] * spec.num_query_tokens
    inputs, labels = [], []
    for ex in examples:
        if spec.decoder_only:
            prompt = prompt_ids(tokenizer, ex, spec.max_length, add_special_tokens=False)
            target = tokenizer(ex.separator + ex.target, add_special_tokens=False)["input_ids"]
            target = target[: spec.max_target_length - 1] + [spec.eos_token_id]
            inputs.append(image_ids + prompt + target)
            labels.append([IGNORE_INDEX] * (len(image_ids) + len(prompt)) + target)
        else:
            inputs.append(image_ids + prompt_ids(tokenizer, ex, spec.max_length, add_special_tokens=True))
            labels.append(tokenizer(ex.target, truncation=True, max_length=spec.max_target_length)["input_ids"])
    width = max(len(ids) for ids in inputs)
    input_ids = torch.full((len(inputs), width), spec.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(inputs), width), dtype=torch.long)
    for i, ids in enumerate(inputs):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention_mask[i, : len(ids)] = 1
    label_width = width if spec.decoder_only else max(len(ids) for ids in labels)
    label_tensor = torch.full((len(labels), label_width), IGNORE_INDEX, dtype=torch.long)
    for i, ids in enumerate(labels):
        label_tensor[i, : len(ids)] = torch.tensor(ids)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": label_tensor}


# ---------------------------------------------------------------------------------------------------
# Stream (ties the pieces together for a DataLoader)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSettings:
    batch_size: int
    image_size: int
    train: bool  # augment, shuffle and repeat forever (True), or one ordered pass (False)
    seed: int = 0
    shuffle_buffer: int = 2048
    crop_scale: tuple[float, float] = (0.5, 1.0)
    hflip: bool = True
    val_fraction: float = 0.0
    max_examples: int = 0  # validation cap over all processes and workers (0 = all)
    tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    english_answer_prob: float = 0.0
    rank: int = 0  # this process among ``world`` data-parallel processes
    world: int = 1
    skip_batches: int = 0  # batches this process already consumed (resume)
    interleave: bool = True  # train: interleave the shards at random (model/stream.py); False = one after another


def _make_stream_class():
    from torch.utils.data import IterableDataset, get_worker_info

    class ExampleStream(IterableDataset):
        """Batches of model inputs from kept shards; see the module docstring.

        Rows are striped over ``world * num_workers`` shards (row index modulo shard count), so every
        worker reads the (cheap) text columns but decodes only its own images. A DataLoader with
        ``batch_size=None`` interleaves worker batches round-robin, which makes the global batch order
        deterministic and lets a resumed run skip exactly the batches already trained on.
        """

        def __init__(self, data: TrainingData, processor, spec: TokenSpec, settings: StreamSettings):
            self.data = data
            self.processor = processor
            self.spec = spec
            self.settings = settings
            self.augment = ImageAugment(settings.image_size, settings.crop_scale, settings.hflip)

        def _shard(self) -> tuple[int, int, int]:
            """(shard index, shard count, this worker's skip count) for the current loader worker.

            Global batch b of this process comes from worker b % workers. A resumed loader starts its
            round-robin at worker 0 again, so worker w takes over the stream of the worker that would
            have produced the next batch: (w + skip_batches) % workers.
            """
            info = get_worker_info()
            workers, worker = (info.num_workers, info.id) if info else (1, 0)
            s = self.settings
            role = (worker + s.skip_batches) % workers
            skip = max(0, math.ceil((s.skip_batches - role) / workers))
            return s.rank * workers + role, s.world * workers, skip

        def _rows(self, epoch: int, shard: int, shards: int) -> Iterator[dict]:
            s = self.settings
            paths = [f.path for f in self.data.files]
            if s.train:
                random.Random(f"{s.seed}:{epoch}:files").shuffle(paths)
            wanted_val = not s.train
            rows = iter_rows(paths)
            if s.train and s.interleave:  # one language per shard: mix them before the buffer (model/stream.py)
                from model.stream import interleave_rows

                rows = interleave_rows(paths, random.Random(f"{s.seed}:{epoch}:interleave"))
            for index, row in enumerate(rows):
                if index % shards != shard:
                    continue
                if s.tasks and row["task"] not in s.tasks:
                    continue
                if s.sources and row["source"] not in s.sources:
                    continue
                if s.val_fraction > 0 and is_validation(row["image_id"], s.val_fraction) != wanted_val:
                    continue
                yield row

        def _shuffled(self, rows: Iterator[dict], rng: random.Random) -> Iterator[dict]:
            buffer: list[dict] = []
            for row in rows:
                buffer.append(row)
                if len(buffer) >= self.settings.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
            rng.shuffle(buffer)
            yield from buffer

        def _row_batches(self, shard: int, shards: int) -> Iterator[tuple[int, list[dict]]]:
            s = self.settings
            epoch = 0
            while True:
                rows = self._rows(epoch, shard, shards)
                if s.train:
                    rows = self._shuffled(rows, random.Random(f"{s.seed}:{epoch}:{shard}:shuffle"))
                batch: list[dict] = []
                produced = 0
                for row in rows:
                    batch.append(row)
                    if len(batch) == s.batch_size:
                        yield epoch, batch
                        produced += 1
                        batch = []
                if batch and not s.train:
                    yield epoch, batch
                    produced += 1
                if not s.train:
                    return
                if produced == 0:
                    raise ValueError(
                        f"data shard {shard}/{shards} has fewer than batch_size={s.batch_size} training rows; "
                        "lower train.batch_size or data.num_workers, or add data"
                    )
                epoch += 1

        def __iter__(self) -> Iterator[dict]:
            s = self.settings
            shard, shards, skip = self._shard()
            # The cap is split over all shards (processes x workers) so that it bounds the total.
            quota = s.max_examples // shards + (shard < s.max_examples % shards) if s.max_examples else None
            served = 0
            for index, (epoch, rows) in enumerate(self._row_batches(shard, shards)):
                if index < skip:
                    continue
                if quota is not None:
                    rows = rows[: quota - served]
                    if not rows:
                        return
                yield self._encode(rows, epoch)
                served += len(rows)

        def _encode(self, rows: list[dict], epoch: int) -> dict:
            """Model inputs of the readable rows, with ``unreadable_images`` (rows whose image failed).

            A batch without a readable image comes back with no ``example_ids`` (and no tensors): the
            trainer skips and counts it, and it still takes its place in the stream (exact resume).
            """
            s = self.settings
            examples, images, unreadable = [], [], 0
            for row in rows:
                example = row_to_example(row, self.data.image_roots, s.english_answer_prob)
                try:
                    image = load_image(example.image_path)
                except (OSError, ValueError) as err:
                    # Counted, logged and reported in the metrics: a corrupt image must not end a long run.
                    unreadable += 1
                    log.warning("skipping example %s: cannot read image %s (%s)",
                                example.example_id, example.image_path, err)
                    continue
                if s.train:
                    image = self.augment(image, random.Random(f"{s.seed}:{epoch}:{example.example_id}"))
                examples.append(example)
                images.append(image)
            if not examples:
                log.warning("no readable image in a batch of %d rows; check image_roots in the manifest", len(rows))
                return {"example_ids": [], "unreadable_images": unreadable}
            batch = encode_examples(self.processor.tokenizer, examples, self.spec)
            batch["pixel_values"] = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
            batch["example_ids"] = [e.example_id for e in examples]
            batch["unreadable_images"] = unreadable
            batch["tasks"] = [e.task for e in examples]
            return batch

    return ExampleStream


def make_loader(data: TrainingData, processor, spec: TokenSpec, settings: StreamSettings, num_workers: int):
    """DataLoader over an ``ExampleStream``; batches are built inside the workers (``batch_size=None``)."""
    from torch.utils.data import DataLoader

    stream = _make_stream_class()(data, processor, spec, settings)
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=2 if num_workers > 0 else None,
    )

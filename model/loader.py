"""Training batches (torch): examples tokenised into model inputs, streamed by a DataLoader.

``encode_examples`` turns ``model/data.py`` examples into token ids, attention mask and labels;
``ExampleStream`` ties reading, examples, augmentation and tokenisation into an iterable dataset whose
rows are striped over processes and loader workers and shuffled with a bounded buffer; ``make_loader``
wraps it in a DataLoader.

Determinism (needed for exact resume): the row order depends only on (seed, epoch, shard), and each
example's crop/flip comes from a generator seeded by (seed, epoch, example_id), not from global state.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from model.data import Example, ImageAugment, TrainingData, is_held_out, iter_rows, load_row_images, row_to_example
from model.stream import ShardVerifier, interleave_rows

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value the loss skips (padding, prompt positions of decoder-only LLMs)


# ---------------------------------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------------------------------


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
    Seq2seq (mT0): encoder input = Q image placeholders per image (NLVR2: 2 x Q, left then right, as the MaRVL
    evaluation) + prompt (+ </s>), labels = target + </s>;
    the model shifts labels into decoder inputs. This matches what ``Blip2Processor`` produces for
    the prompt, so inference sees the same layout.
    Decoder-only (BLOOMZ): input = Q placeholders + prompt + separator + target + eos, prompt and target
    tokenised separately (mBLIP: no separator, ``data.target_separator``); labels copy the target positions
    and ignore placeholders and prompt.
    """
    inputs, labels = [], []
    for ex in examples:
        # BLIP-2 scatters the projected query outputs of the flattened images into the placeholders in order.
        image_ids = [spec.image_token_index] * (spec.num_query_tokens * len(ex.image_paths))
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
    val_fraction: float = 0.0  # hold-out by image (model/data.py is_validation)
    val_ids: frozenset[str] = frozenset()  # hold-out by row (model/data.py select_validation_rows)
    max_examples: int = 0  # validation cap over all processes and workers (0 = all)
    tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    english_answer_prob: float = 0.0
    target_separator: str = "none"  # decoder-only: "none" (mBLIP) or "space" (model/data.py TARGET_SEPARATORS)
    rank: int = 0  # this process among ``world`` data-parallel processes
    world: int = 1
    skip_batches: int = 0  # batches this process already consumed (resume)
    interleave: bool = True  # train: interleave the shards at random (model/stream.py); False = one after another


class ExampleStream(IterableDataset):
    """Batches of model inputs from kept shards (a torch ``IterableDataset``).

    Rows are striped over ``world * num_workers`` shards (row index modulo shard count), so every
    worker reads the (cheap) text columns but decodes only its own images. A DataLoader with
    ``batch_size=None`` interleaves worker batches round-robin, which makes the global batch order
    deterministic and lets a resumed run skip exactly the batches already trained on.

    ``verifier``: checks every shard against the manifest at the start of each pass (the trainer always
    passes one; ``None`` reads the shards unchecked).
    """

    def __init__(self, data: TrainingData, processor, spec: TokenSpec, settings: StreamSettings,
                 verifier: ShardVerifier | None = None):
        self.data = data
        self.processor = processor
        self.spec = spec
        self.settings = settings
        self.verifier = verifier
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
        if self.verifier is not None:
            for path in paths:
                self.verifier.check(path)
        if s.train:
            random.Random(f"{s.seed}:{epoch}:files").shuffle(paths)
        wanted_val = not s.train
        rows = iter_rows(paths)
        if s.train and s.interleave:  # one language per shard: mix them before the buffer (model/stream.py)
            counts = {f.path: f.rows for f in self.data.files}  # the manifest's; a tar has no footer to read
            rows = interleave_rows(paths, random.Random(f"{s.seed}:{epoch}:interleave"),
                                   counts=[counts[p] for p in paths])
        for index, row in enumerate(rows):
            if index % shards != shard:
                continue
            if s.tasks and row["task"] not in s.tasks:
                continue
            if s.sources and row["source"] not in s.sources:
                continue
            if (s.val_ids or s.val_fraction > 0) and is_held_out(row, s.val_ids, s.val_fraction) != wanted_val:
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
        ``pixel_values`` holds every image of every example in order ([images, 3, H, W]; an NLVR2 row gives
        its left, then its right image), so it has more rows than ``input_ids`` when a row has two images.
        """
        s = self.settings
        examples, images, unreadable = [], [], 0
        for row in rows:
            example = row_to_example(row, self.data.image_roots, s.english_answer_prob, s.target_separator)
            try:
                loaded = load_row_images(row, example)  # its own bytes (webdataset, embedded), else its files
            except (OSError, ValueError) as err:
                # Counted, logged and reported in the metrics: a corrupt image must not end a long run.
                unreadable += 1
                log.warning("skipping example %s: cannot read image %s (%s)",
                            example.example_id, " or ".join(map(str, example.image_paths)), err)
                continue
            if s.train:  # each image its own crop and flip; the first keeps the one-image seed
                seed = f"{s.seed}:{epoch}:{example.example_id}"
                loaded = [self.augment(image, random.Random(f"{seed}:{k}" if k else seed))
                          for k, image in enumerate(loaded)]
            examples.append(example)
            images.extend(loaded)
        if not examples:
            log.warning("no readable image in a batch of %d rows; check image_roots in the manifest", len(rows))
            return {"example_ids": [], "unreadable_images": unreadable}
        batch = encode_examples(self.processor.tokenizer, examples, self.spec)
        batch["pixel_values"] = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
        batch["example_ids"] = [e.example_id for e in examples]
        batch["unreadable_images"] = unreadable
        batch["tasks"] = [e.task for e in examples]
        return batch


def make_loader(data: TrainingData, processor, spec: TokenSpec, settings: StreamSettings, num_workers: int,
                verifier: ShardVerifier | None = None):
    """DataLoader over an ``ExampleStream``; batches are built inside the workers (``batch_size=None``)."""
    stream = ExampleStream(data, processor, spec, settings, verifier)
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=2 if num_workers > 0 else None,
    )

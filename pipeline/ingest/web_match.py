"""Image-caption matching examples from the sampled web captions (mBLIP's hard-negative task).

The pool is the sampled CapFilt captions whose image arrived, in file order, from position
``pool_offset`` on, ``pool_size`` of them (the reference: 600,000 examples, rows 1000..601000 of the
downloaded set). Each pool entry is one input record and becomes one row: a positive (its own caption,
answer "yes") or a hard negative (answer "no"), see ``pipeline/matching.py``. An image that cannot be
decoded is quarantined (field ``image_path``) and takes no part in the index.

Embeddings are cached on disk per model and batch content (``<cache_dir>/<model key>/``), so a rerun or
a second run over the same pool embeds nothing again. Memory: the pool's ids, captions and (n, d)
float32 embeddings are held at once (600k x 768 floats = 1.8 GB for ViT-L-14 text plus image vectors).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipeline.clip import load_clip
from pipeline.frozen import Frozen
from pipeline.images.guard import DEFAULT_MAX_PIXELS, open_rgb
from pipeline.images.table import ImageTable
from pipeline.ingest.base import BatchBuilder, ReadBatch, RecordError, relative_source_file
from pipeline.ingest.web_capfilt import (
    EMBEDDING_DIR, NOUNPHRASE_DIR, SamplingSettings, WebCapfiltReader, WebCapfiltSource, image_id_of,
)
from pipeline.matching import build_index, draw_examples, search_neighbours
from pipeline.schema import TASK_MATCH, make_example_id
from pipeline.template_table import pick_match_template

SOURCE_TYPE = "web_match"


@dataclass(frozen=True)
class MatchingSettings:
    model: str = "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K"  # open_clip ViT-L-14 / datacomp_xl_s13b_b90k
    device: str = "auto"
    batch_size: int = 256  # images / captions per embedding batch
    pool_offset: int = 1000
    pool_size: int = 600_000
    k: int = 300  # neighbours per image (the largest rank drawn is 299)
    exact_limit: int = 1_000_000  # exact inner-product index up to this many captions, HNSW above
    seed: int = 0


@dataclass
class WebMatchReader:
    path: str | Path
    image_root: str | Path
    index_dir: str | Path
    cache_dir: str | Path
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    matching: MatchingSettings = field(default_factory=MatchingSettings)
    name: str = SOURCE_TYPE
    stats: dict = field(default_factory=dict)

    def pool(self) -> list[tuple[int, str, str, str]]:
        """``(record index, url, caption, image path)`` of the pool, in file order."""
        captions = WebCapfiltReader(self.path, self.image_root, self.index_dir, self.sampling, name=self.name)
        table = ImageTable.open(self.image_root)
        m = self.matching
        pool: list[tuple[int, str, str, str]] = []
        pending: list[tuple[int, str, str]] = []
        seen = 0

        def resolve() -> int:
            nonlocal seen
            found = table.lookup(url for _, url, _ in pending)
            for index, url, caption in pending:
                entry = found.get(url)
                if entry is None or entry.path is None:
                    continue  # not downloaded: not part of the pool (quarantined by the caption source)
                if m.pool_offset <= seen < m.pool_offset + m.pool_size:
                    pool.append((index, url, caption, entry.path))
                seen += 1
            pending.clear()
            return seen

        for index, _, good, err in captions.iter_selected():
            if good is not None:
                pending.append((index, *good))
            if len(pending) >= 5000 and resolve() >= m.pool_offset + m.pool_size:
                break
        resolve()
        self.stats["sampling"] = captions.stats.get("sampling")
        return pool

    def iter_batches(self, batch_size: int = 5000) -> Iterator[ReadBatch]:
        import numpy as np

        m = self.matching
        pool = self.pool()
        builder = BatchBuilder(self.name, relative_source_file(self.path, None), batch_size)  # no local folder
        encoder = load_clip(m.model, m.device) if pool else None
        good, text_vecs, image_vecs = [], [], []
        for start in range(0, len(pool), m.batch_size):
            part = pool[start:start + m.batch_size]
            images, ok = _load_images(Path(self.image_root), part)
            for (index, url, caption, path), error in zip(part, ok):
                if error:
                    builder.quarantine(index, {"url": url, "caption": caption, "image_path": path}, str(index),
                                       RecordError("image_path", f"image_unreadable: {error}"))
            kept = [p for p, e in zip(part, ok) if not e]
            if not kept:
                continue
            t, v = self._embed(encoder, kept, images)
            good += kept
            text_vecs.append(t)
            image_vecs.append(v)
        examples, stats = [], None
        if good:
            texts, queries = np.concatenate(text_vecs), np.concatenate(image_vecs)
            index, info = build_index(texts, exact_limit=m.exact_limit)
            neighbours = search_neighbours(index, queries, min(m.k, len(good)))
            examples, stats = draw_examples([g[0] for g in good], [g[2] for g in good], neighbours, m.seed)
            self.stats["index"] = info
        self.stats["matching"] = stats.as_dict() if stats else {"positives": 0, "negatives": 0}
        self.stats["matching"].update(pool=len(pool), model=m.model, k=m.k, seed=m.seed)
        for ex in examples:
            index, url, _, path = good[ex.position]
            row_id = str(index)
            _, yes, no = pick_match_template(make_example_id(self.name, row_id))
            builder.add_row(row_id, task=TASK_MATCH, image_id=image_id_of(url), image_path=path,
                            text_en=good[ex.caption][2], answer_en=yes if ex.positive else no)
            if builder.full():
                yield builder.flush()
        yield from builder.drain()

    def _embed(self, encoder, part, images):
        """Text and image vectors of a batch, from the on-disk cache when this batch was embedded before."""
        import numpy as np

        key = hashlib.sha256(json.dumps([encoder.model_id, [(p[2], p[3]) for p in part]]).encode()).hexdigest()[:24]
        model_key = hashlib.sha256(encoder.model_id.encode()).hexdigest()[:12]
        path = Path(self.cache_dir) / model_key / f"{key}.npz"
        if path.exists():
            cached = np.load(path)
            return cached["text"], cached["image"]
        text, image = encoder.embed_texts([p[2] for p in part]), encoder.embed_images(images)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, text=text, image=image)
        tmp.replace(path)
        return text, image


def _load_images(root: Path, part) -> tuple[list, list[str | None]]:
    """RGB images of the decodable entries, and an error message (or None) per entry."""
    from PIL import UnidentifiedImageError

    images, errors = [], []
    for _, _, _, rel in part:
        try:
            images.append(open_rgb(root / rel, DEFAULT_MAX_PIXELS))  # an image bomb is refused, not decoded
            errors.append(None)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            errors.append(f"{type(e).__name__}: {e}"[:200])
    return images, errors


class MatchingConfig(Frozen):
    """Image-caption matching with hard negatives (mBLIP: ViT-L-14 datacomp_xl, 600k examples, k 300)."""

    model: str = "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K"  # CLIP hub id or local folder (transformers format)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(256, gt=0)  # images/captions per embedding batch: memory vs speed
    pool_offset: int = Field(1000, ge=0)  # sampled, downloaded examples skipped first (the reference: 1000)
    pool_size: int = Field(600_000, gt=0)  # matching examples made (one per pool image)
    k: int = Field(300, ge=1)  # neighbours searched per image (the deepest rank drawn is 299)
    exact_limit: int = Field(1_000_000, gt=0)  # exact FAISS index up to this many captions, HNSW above
    seed: int = 0  # which half are positives and which candidate each negative gets

    def settings(self) -> MatchingSettings:
        return MatchingSettings(**self.model_dump())


class WebMatchSource(WebCapfiltSource):
    """``type: web_match``: matching examples built from the same sampled captions as ``web_capfilt``."""

    type: Literal["web_match"] = "web_match"
    matching: MatchingConfig = MatchingConfig()

    def ingest_params(self, work_dir: str | Path) -> dict:
        matching = json.dumps(self.matching.model_dump(mode="json"), sort_keys=True)
        return {**super().ingest_params(work_dir), "matching": matching}

    def open_reader(self, work_dir: str | Path) -> WebMatchReader:
        return WebMatchReader(self.path, self.images, Path(work_dir) / NOUNPHRASE_DIR, Path(work_dir) / EMBEDDING_DIR,
                              self.sampling.settings(), self.matching.settings(), name=self.source_name)

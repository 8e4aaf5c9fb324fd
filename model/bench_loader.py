"""``mblip bench loader``: the trainer's data loader (images/s) on both layouts it reads.

The same rows are read as (a) kept Parquet shards plus an image folder (one file opened per row, as today)
and (b) the webdataset export of that output (``mblip export --format webdataset``: tar shards read as a
stream, the image bytes next to each row's JSON), through the trainer's own ``make_loader`` (shuffle buffer,
interleaving, crop and flip, tokenisation, the BLIP-2 image processor of a tiny model built here). Images
are img2dataset-sized JPEGs (256 px, noisy so they do not compress away), ``captions`` rows per image as in
COCO. Prints both speeds and their ratio; the first batches (worker start-up) are not timed.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

import polars as pl

from model.build import build_processor
from model.data import read_manifest
from model.loader import StreamSettings, TokenSpec, make_loader
from model.tiny import build_tiny_blip2, build_tiny_mt5
from pipeline.export_webdataset import export_webdataset
from pipeline.schema import ROW_SCHEMA, STATUS_KEPT, conform, make_example_id

IMAGE_SIZE = 256  # img2dataset's default resize
QUERY_TOKENS = 8


def write_bench_output(root: Path, images: int, captions: int, seed: int = 0) -> Path:
    """A kept-shard output of ``images`` JPEGs with ``captions`` English rows each, images in root/images."""
    from PIL import Image

    rng = random.Random(seed)
    rows = []
    folder = _mkdir(root / "images")
    for i in range(images):
        rel = f"{i:06d}.jpg"
        pixels = bytes(rng.randrange(256) for _ in range(64 * 64 * 3))
        Image.frombytes("RGB", (64, 64), pixels).resize((IMAGE_SIZE, IMAGE_SIZE)).save(folder / rel, quality=90)
        for c in range(captions):
            rows.append({"example_id": make_example_id("bench", f"{i}-{c}"), "source": "bench",
                         "source_record_id": f"{i}-{c}", "task": "caption", "image_id": str(i), "image_path": rel,
                         "text_en": f"A picture number {i}, caption {c}.", "lang": "en", "text_tgt": None,
                         "status": STATUS_KEPT})
    frame = conform(pl.DataFrame(rows), ROW_SCHEMA).sort("example_id")
    out = root / "output"
    _mkdir(out / "data" / "en")
    frame.write_parquet(out / "data/en/part-00000.parquet", row_group_size=1024)
    manifest = {"files": [{"path": "data/en/part-00000.parquet", "split": "kept", "lang": "en", "rows": frame.height}],
                "image_roots": {"bench": str(root / "images")}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def images_per_second(location: Path, processor, spec: TokenSpec, batches: int, batch_size: int,
                      workers: int) -> float:
    """Images/s of the training loader over ``batches`` batches, after two untimed warm-up batches."""
    settings = StreamSettings(batch_size=batch_size, image_size=224, train=True, shuffle_buffer=256)
    loader = iter(make_loader(read_manifest(location), processor, spec, settings, workers))
    for _ in range(2):
        next(loader)
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(loader)["example_ids"])
    return seen / (time.perf_counter() - start)


def bench_loader(images: int = 400, captions: int = 5, batches: int = 40, batch_size: int = 16, workers: int = 0,
                 work: Path | None = None) -> dict:
    """Both layouts' loader speed (images/s) on the same rows; see the module's docstring."""
    with tempfile.TemporaryDirectory(prefix="mblip-bench-loader-") as tmp:
        root = Path(work or tmp)
        out = write_bench_output(_mkdir(root), images, captions)
        export_webdataset(out, root / "export", shard_rows=1000)
        texts = [f"A picture number {i}." for i in range(50)]
        blip2 = build_tiny_blip2(root / "tiny-blip2", image_size=32)
        llm = build_tiny_mt5(root / "tiny-mt5", texts)
        processor = build_processor(str(blip2), str(llm), QUERY_TOKENS, "<image>")
        tok = processor.tokenizer
        spec = TokenSpec(tok.convert_tokens_to_ids("<image>"), QUERY_TOKENS, 32, False, tok.pad_token_id,
                         tok.eos_token_id)
        folders = images_per_second(out, processor, spec, batches, batch_size, workers)
        tars = images_per_second(root / "export" / "webdataset", processor, spec, batches, batch_size, workers)
    return {"rows": images * captions, "images": images, "batches": batches, "batch_size": batch_size,
            "workers": workers, "image_folders_images_per_s": folders, "webdataset_images_per_s": tars,
            "ratio": tars / folders}


def print_report(result: dict) -> None:
    print(f"trainer data loader, {result['rows']} rows over {result['images']} JPEGs of {IMAGE_SIZE} px, "
          f"{result['batches']} batches of {result['batch_size']}, {result['workers']} workers")
    print(f"  image folders + Parquet : {result['image_folders_images_per_s']:8.1f} images/s")
    print(f"  webdataset tar shards   : {result['webdataset_images_per_s']:8.1f} images/s")
    print(f"  ratio (webdataset / folders): {result['ratio']:.2f}x")

"""The demo scenes as a training output, without translation: English targets, ``lang = "en"``.

Builds rows with the pipeline's own readers (COCO captions, VQAv2) from the files
``pipeline.demo.data`` writes, marks them kept with the English text as target, and writes them in
the data pipeline's output layout (``data/en/part-00000.parquet`` + ``manifest.json`` with
``image_roots``). Tests and the demo evaluation train on it; the real flow trains on translated output.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import load_config
from pipeline.demo import DEMO_ALL_TASKS_CONFIG
from pipeline.demo.data import SUBTYPE, demo_paths, generate_demo_data
from pipeline.ingest.coco import CocoCaptionsReader
from pipeline.ingest.vqav2 import Vqav2Reader
from pipeline.io import sha256_file
from pipeline.languages import SOURCE_LANGUAGE, SOURCE_NLLB, resolve_languages
from pipeline.mix import mix_thresholds
from pipeline.process import ProcessSettings, process_rows
from pipeline.schema import ROW_SCHEMA, STATUS_KEPT, conform

DEMO_CAPTION_SOURCE = "coco_captions"
DEMO_VQA_SOURCE = "vqav2"


def kept_shard_entry(out_dir: Path, rel: str, lang: str, rows: int) -> dict:
    """The manifest entry of a kept shard as the pipeline writes it: path, split, language, rows, bytes, sha256
    (the trainer checks each shard against the last two)."""
    path = Path(out_dir) / rel
    return {"path": rel, "split": "kept", "lang": lang, "rows": rows, "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}


def write_english_demo_output(demo_root: Path, out_dir: Path) -> Path:
    """Read the demo files with the pipeline readers and write an English-only training output."""
    import polars as pl

    paths = demo_paths(demo_root)
    readers = [
        CocoCaptionsReader(paths.captions, name=DEMO_CAPTION_SOURCE, image_dir=SUBTYPE),
        Vqav2Reader(paths.questions, paths.annotations, name=DEMO_VQA_SOURCE),
    ]
    frames = [batch.rows for reader in readers for batch in reader.iter_batches()]
    rows = pl.concat(frames).with_columns(
        lang=pl.lit(SOURCE_LANGUAGE),
        lang_nllb=pl.lit(SOURCE_NLLB),
        text_tgt=pl.col("text_en"),
        answer_tgt=pl.col("answer_en"),
        status=pl.lit(STATUS_KEPT),
    )
    rows = conform(rows, ROW_SCHEMA).sort("example_id")
    rel = "data/en/part-00000.parquet"
    (out_dir / "data" / "en").mkdir(parents=True, exist_ok=True)
    rows.write_parquet(out_dir / rel, row_group_size=256)
    image_root = str(paths.images.resolve())
    manifest = {
        "files": [kept_shard_entry(out_dir, rel, "en", rows.height)],
        "image_roots": {DEMO_CAPTION_SOURCE: image_root, DEMO_VQA_SOURCE: image_root},
        "note": "demo scenes, English targets (no translation)",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """``python -m model.demo.trainer runs/demo_output``: demo scenes plus their English training output."""
    import argparse

    parser = argparse.ArgumentParser(description="Demo scenes as an English-only training output.")
    parser.add_argument("out", nargs="?", default="runs/demo_output")
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    out = Path(args.out)
    generate_demo_data(out / "scenes", n_images=args.images, seed=0)
    print(write_english_demo_output(out / "scenes", out))


if __name__ == "__main__":
    main()


ALL_TASKS_CONFIG = DEMO_ALL_TASKS_CONFIG


def write_all_tasks_demo_output(demo_root: Path, out_dir: Path, cap_per_task: int | None = None) -> Path:
    """Every task of the mix on the demo scenes, English (untranslated) rows with the pipeline's
    prompt and target, in the output layout; ``cap_per_task`` keeps a few rows of each task (the
    task mix's cap). Needs ``pipeline.demo.tasks.generate_task_demo_data(demo_root)`` first."""
    import polars as pl

    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "demo_all_tasks.yaml"
    config_path.write_text(ALL_TASKS_CONFIG.read_text().replace("demo-data/", f"{Path(demo_root).resolve()}/"))
    config = load_config(config_path)
    frames = []
    for source in config.sources:
        reader = source.open_reader(config.work_dir)
        frames += [b.rows for b in reader.iter_batches() if b.rows.height]
    rows = pl.concat(frames)
    mix = None
    if cap_per_task is not None:
        tasks = sorted(set(rows["task"].to_list()))
        ids = list(zip(rows["task"].to_list(), rows["example_id"].to_list()))
        mix = mix_thresholds(ids, {t: {"share": 1.0, "cap": cap_per_task} for t in tasks}, seed=0)
    settings = ProcessSettings(resolve_languages(["en"]), backtranslate=False, mix=mix or {})
    frame = process_rows(rows, settings, translator=None)
    # English rows are their own "translation": keep every row the mix keeps (the demo has no filter).
    frame = frame.filter(~pl.col("reject_reason").fill_null("").str.starts_with("mix_"))
    frame = conform(frame.with_columns(status=pl.lit("kept"), reject_reason=pl.lit(None, dtype=pl.String)), ROW_SCHEMA)
    rel = "data/en/part-00000.parquet"
    (out_dir / "data" / "en").mkdir(parents=True, exist_ok=True)
    frame.sort("example_id").write_parquet(out_dir / rel, row_group_size=256)
    manifest = {
        "files": [kept_shard_entry(out_dir, rel, "en", frame.height)],
        "image_roots": {s.source_name: str(s.images) for s in config.sources},
        "note": "demo scenes, every task of the mix, English targets (no translation)",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out_dir

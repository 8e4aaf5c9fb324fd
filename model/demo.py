"""The demo scenes as a training output, without translation: English targets, ``lang = "en"``.

Builds rows with the pipeline's own readers (COCO captions, VQAv2) from the files
``pipeline.demo_data`` writes, marks them kept with the English text as target, and writes them in
the data pipeline's output layout (``data/en/part-00000.parquet`` + ``manifest.json`` with
``image_roots``). Tests and the demo evaluation train on it; the real flow trains on translated output.
"""

from __future__ import annotations

import json
from pathlib import Path

DEMO_CAPTION_SOURCE = "coco_captions"
DEMO_VQA_SOURCE = "vqav2"


def write_english_demo_output(demo_root: Path, out_dir: Path) -> Path:
    """Read the demo files with the pipeline readers and write an English-only training output."""
    import polars as pl

    from pipeline.demo_data import SUBTYPE, demo_paths
    from pipeline.ingest.coco import CocoCaptionsReader
    from pipeline.ingest.vqav2 import Vqav2Reader
    from pipeline.schema import ROW_SCHEMA, conform

    paths = demo_paths(demo_root)
    readers = [
        CocoCaptionsReader(paths.captions, name=DEMO_CAPTION_SOURCE, image_dir=SUBTYPE),
        Vqav2Reader(paths.questions, paths.annotations, name=DEMO_VQA_SOURCE),
    ]
    frames = [batch.rows for reader in readers for batch in reader.iter_batches()]
    rows = pl.concat(frames).with_columns(
        lang=pl.lit("en"),
        lang_nllb=pl.lit("eng_Latn"),
        text_tgt=pl.col("text_en"),
        answer_tgt=pl.col("answer_en"),
        status=pl.lit("kept"),
    )
    rows = conform(rows, ROW_SCHEMA).sort("example_id")
    rel = "data/en/part-00000.parquet"
    (out_dir / "data" / "en").mkdir(parents=True, exist_ok=True)
    rows.write_parquet(out_dir / rel, row_group_size=256)
    image_root = str(paths.images.resolve())
    manifest = {
        "files": [{"path": rel, "split": "kept", "lang": "en", "rows": rows.height}],
        "image_roots": {DEMO_CAPTION_SOURCE: image_root, DEMO_VQA_SOURCE: image_root},
        "note": "demo scenes, English targets (no translation)",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """``python -m model.demo runs/demo_output``: demo scenes plus their English training output."""
    import argparse

    from pipeline.demo_data import generate_demo_data

    parser = argparse.ArgumentParser(description="Demo scenes as an English-only training output.")
    parser.add_argument("out", nargs="?", default="runs/demo_output")
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    out = Path(args.out)
    generate_demo_data(out / "scenes", n_images=args.images, seed=0)
    print(write_english_demo_output(out / "scenes", out))


if __name__ == "__main__":
    main()

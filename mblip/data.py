"""Dataset commands: languages, generate, regenerate, fetch-images, demo, verify, export."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_languages(args: argparse.Namespace) -> int:
    from pipeline.languages import load_languages

    print(f"{'code':<5} {'nllb':<9} {'script':<6} {'mC4 %':>9}  name")
    for lang in load_languages():
        print(f"{lang.code:<5} {lang.nllb:<9} {lang.script:<6} {lang.mc4_share_pct:>9.4f}  {lang.name}")
    return 0

def _cmd_generate(args: argparse.Namespace) -> int:
    from flows.generate import run_generate

    from pipeline.config import load_config
    from pipeline.summary import print_summary

    config = load_config(args.config)  # parsed once: the flow gets these settings
    manifest = run_generate(config, out_dir=str(args.out) if args.out else None, show_progress=True,
                            dask_address=args.dask_address, workers=args.workers)
    print_summary(Path(args.out) if args.out else Path(config.output.dir), manifest)
    return 0

def _cmd_regenerate(args: argparse.Namespace) -> int:
    from flows.regenerate import run_regenerate

    from pipeline.summary import print_summary

    manifest = run_regenerate(
        str(args.out), dask_address=args.dask_address, workers=args.workers, languages=args.languages or None,
        sources=args.sources or None, model=args.model, min_bt_chrf=args.min_bt_chrf, reverse=args.reverse,
        config_path=str(args.config) if args.config else None, show_progress=True,
    )
    print_summary(Path(args.out), manifest)
    chunks = manifest.get("run", {}).get("chunks", {})
    print(f"\n  chunks: {chunks.get('done', 0)} reused, {chunks.get('redecide', 0)} re-decided from stored scores, "
          f"{chunks.get('rescore', 0)} rescored (no translation), {chunks.get('process', 0)} processed")
    return 0

def _add_runner_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="run chunk tasks on a local Dask cluster of N worker processes (default: threads here)")
    p.add_argument("--dask-address", default=None,
                   help="run chunk tasks on an existing Dask cluster, e.g. tcp://scheduler:8786")

def _cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.verify import format_report, verify_output

    report = verify_output(args.out)
    print(format_report(report))
    return 0 if report.ok else 1

def _cmd_export_dataset(args: argparse.Namespace) -> int:
    from pipeline.export import export_dataset, prompt_source

    result = export_dataset(args.out, args.dest, formats=tuple(args.format), languages=tuple(args.languages),
                            prompts=prompt_source(args.prompts))
    for f in result["files"]:
        print(f"{f['format']:<8} {f['lang']:<5} {f['rows']:>9} rows  {f['path']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo

    return run_demo(Path(args.out), images=args.images, base_only=args.base_only, web=not args.no_web)


def add_parsers(sub) -> None:
    p = sub.add_parser("languages", help="print the 96-language table")
    p.set_defaults(func=_cmd_languages)

    p = sub.add_parser("generate", help="build a dataset from a YAML config (Prefect flow)")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, default=None, help="output directory (overrides output.dir)")
    _add_runner_args(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("regenerate",
                       help="update a finished dataset, redoing only what a change touches (Prefect flow)")
    p.add_argument("out", type=Path, help="output root of a finished run (holds config.resolved.yaml)")
    p.add_argument("--languages", nargs="*", default=[], help="recompute the rows of these languages in every chunk")
    p.add_argument("--sources", nargs="*", default=[], help="read these sources again and reprocess their chunks")
    p.add_argument("--model", default=None, help="new converted MT model directory (chunks are translated again)")
    p.add_argument("--min-bt-chrf", type=float, default=None,
                   help="new back-translation chrF++ threshold (re-decided from stored scores, nothing translated)")
    p.add_argument("--reverse", default=None, choices=["score", "decode", "both"],
                   help="filter's reverse check; outputs stored under another mode are rescored, not translated")
    p.add_argument("--config", type=Path, default=None, help="config to use instead of OUT/config.resolved.yaml")
    _add_runner_args(p)
    p.set_defaults(func=_cmd_regenerate)

    from mblip.fetch_images import add_parser as add_fetch_images

    add_fetch_images(sub)

    p = sub.add_parser("demo", help="generate demo data and run the whole pipeline on it")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--images", type=int, default=200, help="number of demo images (5 captions + 3 questions each)")
    p.add_argument("--no-web", action="store_true", help="skip the web captions and matching sources (fetch-images)")
    p.add_argument("--base-only", action="store_true", help="only COCO captions and VQAv2 (not every task of the mix)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("verify", help="recompute checksums and row counts of an output against its manifest")
    p.add_argument("out", type=Path, help="output root (the folder holding manifest.json)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("export", help="write the trainer view (Parquet) and/or the mBLIP JSON format of an output")
    p.add_argument("out", type=Path, help="output root (the folder holding manifest.json)")
    p.add_argument("--dest", type=Path, default=None, help="export folder (default: OUT/export)")
    p.add_argument("--format", nargs="+", default=["trainer", "mblip"], choices=["trainer", "mblip"])
    p.add_argument("--languages", nargs="*", default=[], help="project codes (default: every kept language)")
    p.add_argument("--prompts", default="row", choices=["row", "english"],
                   help="row: the shards' translated prompts (English templates where missing); "
                        "english: English templates")
    p.set_defaults(func=_cmd_export_dataset)

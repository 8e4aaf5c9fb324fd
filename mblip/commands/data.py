"""Handlers of the data commands (parsers: ``mblip.data``): each runs one command from its parsed arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.demo import run_demo
from flows.generate import run_config, run_generate
from flows.regenerate import run_regenerate
from pipeline.calibrate import calibrate_output, format_calibration, write_rules
from pipeline.config import load_config
from pipeline.export import export_dataset, prompt_source
from pipeline.export_webdataset import export_webdataset
from pipeline.io import is_url
from pipeline.languages import load_languages
from pipeline.outputs.remote import verify_remote
from pipeline.summary import print_summary
from pipeline.verify import format_report, verify_output


def cmd_languages(args: argparse.Namespace) -> int:
    print(f"{'code':<5} {'nllb':<9} {'script':<6} {'mC4 %':>9}  name")
    for lang in load_languages():
        print(f"{lang.code:<5} {lang.nllb:<9} {lang.script:<6} {lang.mc4_share_pct:>9.4f}  {lang.name}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # parsed once: the flow gets these settings
    manifest = run_generate(config, out_dir=str(args.out) if args.out else None, show_progress=True,
                            dask_address=args.dask_address, workers=args.workers)
    print_summary(run_config(config, args.out).output.local, manifest)
    return 0


def cmd_regenerate(args: argparse.Namespace) -> int:
    manifest = run_regenerate(
        str(args.out), dask_address=args.dask_address, workers=args.workers, languages=args.languages or None,
        sources=args.sources or None, model=args.model, min_bt_chrf=args.min_bt_chrf, reverse=args.reverse,
        config_path=str(args.config) if args.config else None, rules=args.rules, contrasts=args.contrasts,
        show_progress=True,
    )
    print_summary(Path(args.out), manifest)  # with what was done to the chunks
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    calibration = calibrate_output(args.out, noisy_share=args.noisy_share, min_rows=args.min_rows, bound=args.bound,
                                   knobs=args.knobs or None)
    print(format_calibration(calibration))
    path = write_rules(calibration, args.rules)
    overrides = sum(len(v) for v in calibration.rules.per_language.values())
    print(f"wrote {path}: {overrides} per-language thresholds in {len(calibration.rules.per_language)} languages; "
          f"apply with: mblip regenerate {args.out} --rules {path}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_remote(args.out) if is_url(args.out) else verify_output(args.out)
    print(format_report(report))
    return 0 if report.ok else 1


def cmd_export_dataset(args: argparse.Namespace) -> int:
    formats = tuple(f for f in args.format if f != "webdataset")
    files = []
    if formats:
        files += export_dataset(args.out, args.dest, formats=formats, languages=tuple(args.languages),
                                prompts=prompt_source(args.prompts),
                                english_answer_prob=args.english_answer_prob)["files"]
    if "webdataset" in args.format:
        shards = export_webdataset(args.out, args.dest, tuple(args.languages), args.shard_rows)["files"]
        files += [{"format": "wds", **f, "path": f"webdataset/{f['path']}"} for f in shards]
    for f in files:
        print(f"{f['format']:<8} {f['lang']:<5} {f['rows']:>9} rows  {f['path']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(Path(args.out), images=args.images, base_only=args.base_only, web=not args.no_web)

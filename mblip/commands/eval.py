"""Handlers of the eval commands (parsers: ``mblip.eval``): each runs one command from its parsed arguments."""

from __future__ import annotations

import argparse

from model.evaluate.paper import load_paper_file
from model.evaluate.report import find_results, render_markdown
from model.evaluate.runner import format_table, run_evaluation


def cmd_evaluate(args: argparse.Namespace) -> int:
    import sys

    try:
        result = run_evaluation(
            args.benchmark,
            args.data,
            args.images,
            args.model,
            args.out,
            languages=args.languages,
            limit=args.limit,
            skip_missing=args.skip_missing,
            split=args.split,
            batch_size=args.batch_size,
            device=args.device,
            quantization=args.quantization,
            progress=not args.no_progress,
            language_names=args.language_names,
            vision_precision=args.vision_precision,
        )
    except OSError as e:  # an image that exists but cannot be decoded (FileNotFoundError is handled by mblip)
        if isinstance(e, FileNotFoundError):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(result))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import sys

    paper = load_paper_file(args.paper) if args.paper else None
    results, others = find_results(args.run_dir)
    print(render_markdown(results, paper))
    for path in others:
        print(f"note: {path} is not an `mblip eval` result; left out", file=sys.stderr)
    return 0

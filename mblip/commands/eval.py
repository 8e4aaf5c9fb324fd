"""Handlers of the eval commands (parsers: ``mblip.eval``): each runs one command from its parsed arguments."""

from __future__ import annotations

import argparse

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

"""Handler of ``mblip browse`` (parser: ``mblip.browse``)."""

from __future__ import annotations

import argparse

from pipeline.browse.site import build_site


def cmd_browse(args: argparse.Namespace) -> int:
    report = build_site(args.out, args.site, sample=args.sample, seed=args.seed, languages=tuple(args.languages),
                        thumb_px=args.thumb_px)
    print(f"{report.index}: {report.pages} pages, {report.rows_shown:,} of {report.rows:,} rows shown, "
          f"{report.thumbnails:,} thumbnails" + (f", {report.image_problems:,} images could not be shown (each row "
                                                  "says why)" if report.image_problems else ""))
    print(f"open {report.index.resolve().as_uri()}")
    if report.card_linked:
        print(f"the dataset card ({args.out / 'README.md'}) links to it")
    return 0

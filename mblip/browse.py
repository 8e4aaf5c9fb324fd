"""``mblip browse OUT``: a static site of an output's rows, to look at the data (``pipeline.browse``)."""

from __future__ import annotations

from pathlib import Path

from pipeline.browse import DEFAULT_SAMPLE, THUMB_PX


def add_parsers(sub) -> None:
    p = sub.add_parser("browse", help="write a static HTML site of an output's rows (opens from disk): image, "
                                      "prompt, target, source, back-translation, scores, status and reason")
    p.add_argument("out", type=Path, help="a finished output (holds manifest.json)")
    p.add_argument("--site", type=Path, default=None,
                   help="where to write the site (default OUT/browse, which the dataset card then links)")
    p.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                   help=f"rows per language and task page, a seeded random sample of kept and rejected rows "
                        f"(default {DEFAULT_SAMPLE}); 0: every row (large pages for a large output)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--languages", nargs="+", default=(), help="only these languages (default: every language)")
    p.add_argument("--thumb-px", type=int, default=THUMB_PX,
                   help=f"longest side of the thumbnails in pixels (default {THUMB_PX})")
    p.set_defaults(handler="browse:cmd_browse")

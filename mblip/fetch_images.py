"""``mblip fetch-images SOURCE --out DIR``: fetch a URL list, or a config's sampled web captions, with img2dataset.

SOURCE is a URL list (``.txt``, ``.parquet``/``.csv`` with a ``url`` column, a CapFilt ``.json``) or a
pipeline config (``.yaml``): then the sampled captions of its ``web_capfilt``/``web_match`` sources are
fetched, and the sampling's phrase index is left where ``mblip generate`` will find it. Only http and https
URLs are fetched (others are refused: ``unsupported_scheme``, ``invalid_url``); each URL has a byte cap, a
pixel cap and a deadline (``too_large``, ``timeout``). Exit status 0 when the list is done, whatever
failed; the failures are printed by reason."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("fetch-images",
                       help="fetch images by URL with img2dataset (256 px, white border), incrementally")
    p.add_argument("source", help="URL list (.txt/.parquet/.csv/CapFilt .json) or a config whose web sources to fetch")
    p.add_argument("--out", type=Path, required=True, help="image root: images plus url_table.parquet")
    p.add_argument("--timeout", type=int, default=10, help="seconds per socket read (the reference: 10)")
    # default None: FetchSettings' defaults (pipeline/images/opener.py) apply
    p.add_argument("--deadline", type=float, default=None,
                   help="seconds per URL, all of it: connect, redirects, body (default 30); 0: none")
    p.add_argument("--max-bytes", type=int, default=None, help="bytes per response (default 16 MiB); 0: no cap")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="width x height per image, from its header, before decoding (default 50 million); 0: no cap")
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--processes", type=int, default=1, help="img2dataset processes")
    p.add_argument("--threads", type=int, default=32, help="downloads in flight per process")
    p.add_argument("--distributor", default="multiprocessing", choices=["multiprocessing", "pyspark", "ray"])
    p.add_argument("--retry-failed", action="store_true", help="fetch URLs that failed in an earlier run again")
    p.set_defaults(handler="fetch_images:cmd_run")

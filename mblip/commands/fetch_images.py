"""Handler of ``mblip fetch-images`` (parser: ``mblip.fetch_images``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config import load_config
from pipeline.images.fetch import FetchSettings, fetch_images, format_report, read_url_list


def config_image_urls(config_path: Path) -> list[str]:
    """The URLs a config's web sources sample (see ``PipelineConfig.web_image_urls``)."""
    urls = load_config(config_path).web_image_urls()
    if not urls:
        raise ValueError(f"{config_path}: no web_capfilt or web_match source to fetch images for")
    return urls


def cmd_run(args: argparse.Namespace) -> int:
    config = args.source.lower().endswith((".yaml", ".yml"))
    urls = config_image_urls(Path(args.source)) if config else read_url_list(args.source)  # a list may be a URL
    caps = {"deadline_s": args.deadline, "max_bytes": args.max_bytes, "max_pixels": args.max_pixels}
    settings = FetchSettings(timeout_s=args.timeout, retries=args.retries, processes=args.processes,
                             threads=args.threads, distributor=args.distributor, retry_failed=args.retry_failed,
                             **{k: v for k, v in caps.items() if v is not None})
    report = fetch_images(urls, args.out, settings)
    print(format_report(report))
    return 0

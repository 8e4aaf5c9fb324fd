"""Fetch images by URL with img2dataset into an image root, incrementally, and keep the fetch table.

Geometry as mBLIP's download script (arXiv 2307.06930; BLIP's CapFilt images): ``resize_mode border``,
``image_size 256``, ``resize_only_if_bigger``: the longest side becomes 256 (bicubic, as the reference's
PIL resize; img2dataset's default is area) and the image is padded with white to 256x256; smaller images
are stored as they are. JPEG quality 95, 10 s timeout.

Incremental twice over: only URLs the table does not know yet are handed to img2dataset (a rerun with
the same list fetches nothing), and each run's list gets a folder named by its content, in
img2dataset's own ``incremental`` mode, so a killed run resumes at its first unfinished shard. URLs that
failed stay failed in the table (with the reason) unless ``retry_failed``.

Only http and https URLs are fetched, whatever the list's format: any other URL is settled at once as
failed, with the reason ``unsupported_scheme`` (``file:``, ``ftp:``, ``data:``) or ``invalid_url`` (a
bare path, no host), and never handed to img2dataset. Each URL has a byte cap, a pixel cap and a
deadline (``FetchLimits``, ``pipeline/images/opener.py``): over a cap, reason ``too_large``; past the
deadline, ``timeout``.

img2dataset is an optional dependency (``pip install 'mblip-pipeline[web]'``); wandb stays off and
albumentations' update check (a network call at import) is disabled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import polars as pl

from pipeline.images.guard import DEFAULT_MAX_PIXELS, url_problem
from pipeline.images.opener import FetchLimits, guarded_downloads
from pipeline.images.table import (
    FETCH_STATS, STATUS_FAILED, STATUS_SUCCESS, TABLE, TABLE_SCHEMA, classify_error, read_table,
)
from pipeline.ingest.web_capfilt import CapfiltRecords
from pipeline.io import is_url, url_filesystem, write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

LISTS_DIR = "_lists"
REFUSED_RUN = "refused"  # the ``run`` of URLs settled without a fetch (not http or https)


@dataclass(frozen=True)
class FetchSettings:
    image_size: int = 256
    resize_mode: str = "border"
    resize_only_if_bigger: bool = True
    downscale_interpolation: str = "bicubic"  # as the reference (PIL bicubic); img2dataset's default: "area"
    encode_quality: int = 95
    timeout_s: int = 10  # per socket read, as the reference
    deadline_s: float = FetchLimits.deadline_s  # per URL, all of it; 0: none
    max_bytes: int = FetchLimits.max_bytes  # per response; 0: no cap
    max_pixels: int = DEFAULT_MAX_PIXELS  # per image, from its header, before decoding; 0: no cap
    retries: int = 0
    processes: int = 1  # img2dataset processes (each runs `threads` downloads at once)
    threads: int = 32
    shard_rows: int = 10_000  # URLs per img2dataset shard (its unit of resume)
    distributor: str = "multiprocessing"  # or "pyspark" / "ray" (see docs/performance.md)
    retry_failed: bool = False

    def limits(self) -> FetchLimits:
        return FetchLimits(max_bytes=self.max_bytes, max_pixels=self.max_pixels, deadline_s=self.deadline_s)


@dataclass
class FetchReport:
    requested: int  # distinct URLs in the list
    already_done: int  # settled by an earlier run (not fetched again)
    fetched: int  # handed to img2dataset this run
    refused: int  # not fetched this run: not http or https (see ``reasons``)
    success: int  # of the requested URLs, now available
    failed: int
    reasons: dict[str, int] = field(default_factory=dict)  # failure class -> count (requested URLs)
    run_reasons: dict[str, int] = field(default_factory=dict)  # img2dataset status -> count (this run)


def read_url_list(path: str | Path) -> list[str]:
    """URLs of a ``.txt`` (one per line), ``.parquet``/``.csv`` (a ``url`` column) or CapFilt ``.json`` list
    (the list itself may be at an fsspec URL: it is read through a local copy).

    Every URL is returned, whatever its scheme: ``fetch_images`` refuses (and reports) what it does not
    fetch. A CapFilt record without a usable caption is left out (it is quarantined at ingest)."""
    if is_url(str(path)):  # an fsspec URL: read through a local copy (one download)
        with tempfile.TemporaryDirectory(prefix="mblip-url-list-") as tmp:
            local = Path(tmp) / PurePosixPath(str(path)).name
            fs, remote = url_filesystem(str(path))
            if not fs.isfile(remote):
                raise FileNotFoundError(f"{path}: URL list not found")
            fs.get_file(remote, str(local))
            return read_url_list(local)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: URL list not found")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [line.strip() for line in read_utf8(path).splitlines() if line.strip()]
    if suffix in (".parquet", ".csv"):
        if suffix == ".csv":
            read_utf8(path)
        try:
            frame = pl.read_parquet(path) if suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
        except pl.exceptions.PolarsError as e:
            raise ValueError(f"{path}: not a readable {suffix[1:]} URL list ({e})") from e
        if "url" not in frame.columns:
            raise ValueError(f"{path}: no 'url' column (columns: {', '.join(frame.columns)})")
        return [str(u) for u in frame["url"].to_list() if u]
    if suffix == ".json":
        urls = []
        for _, record, good, error in CapfiltRecords(path).iter_all():
            if good is not None:
                urls.append(good[0])
            elif error.field == "url" and isinstance(record, dict) and isinstance(record.get("url"), str):
                urls.append(record["url"])  # not http(s): refused by fetch_images, with its reason
        return urls
    raise ValueError(f"{path}: unknown URL list format {suffix!r} (use .txt, .parquet, .csv or a CapFilt .json)")


def read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: byte 0x{data[e.start]:02X} at offset {e.start} is not valid UTF-8; save the URL "
                         "list as UTF-8") from None


def refused_rows(urls: list[str]) -> pl.DataFrame:
    """Table rows settling the URLs that are not fetched (not http or https), each with its reason."""
    rows = []
    for url in urls:
        reason = url_problem(url)
        if reason is not None:
            rows.append({"url": url, "status": STATUS_FAILED, "path": None, "reason": reason,
                         "error": f"not fetched: only http and https URLs are ({reason})", "width": None,
                         "height": None, "run": REFUSED_RUN})
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)


def _img2dataset():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations checks PyPI at import otherwise
    try:
        from img2dataset import download
    except ImportError as e:
        raise ImportError("fetch-images needs img2dataset: pip install 'mblip-pipeline[web]'") from e
    return download


def fetch_images(urls: Iterable[str], out_dir: str | Path, settings: FetchSettings = FetchSettings()) -> FetchReport:
    """Fetch the URLs not yet in ``out_dir``'s table, merge the results into it, return the counts."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = list(dict.fromkeys(u for u in urls if u))
    table = read_table(out_dir)
    settled = table if not settings.retry_failed else table.filter(pl.col("status") == STATUS_SUCCESS)
    known = set(settled["url"].to_list())
    new = [u for u in wanted if u not in known]
    refused = refused_rows(new)
    if refused.height:
        table = pl.concat([table.filter(~pl.col("url").is_in(refused["url"].implode())), refused])
        write_parquet_atomic(table.sort("url"), out_dir / TABLE)
        log.warning("%d URLs refused (only http and https are fetched): %s", refused.height,
                    ", ".join(f"{r} {n}" for r, n in refused.group_by("reason").len().sort("reason").iter_rows()))
    todo = [u for u in new if url_problem(u) is None]
    run_reasons: dict[str, int] = {}
    if todo:
        run = "run-" + hashlib.sha256("\n".join(todo).encode()).hexdigest()[:12]
        list_path = out_dir / LISTS_DIR / f"{run}.parquet"
        if not list_path.exists():
            write_parquet_atomic(pl.DataFrame({"url": todo}, schema={"url": pl.String()}), list_path)
        download = _img2dataset()
        with guarded_downloads(settings.limits()):
            download(
                url_list=str(list_path), input_format="parquet", url_col="url", output_folder=str(out_dir / run),
                output_format="files", image_size=settings.image_size, resize_mode=settings.resize_mode,
                resize_only_if_bigger=settings.resize_only_if_bigger, encode_quality=settings.encode_quality,
                downscale_interpolation=settings.downscale_interpolation,
                encode_format="jpg", timeout=settings.timeout_s, retries=settings.retries,
                processes_count=settings.processes, thread_count=settings.threads,
                number_sample_per_shard=settings.shard_rows, distributor=settings.distributor,
                incremental_mode="incremental", enable_wandb=False, extract_exif=False, compute_hash=None,
            )
        fresh, run_reasons = collect_run(out_dir, run)
        table = pl.concat([table.filter(~pl.col("url").is_in(fresh["url"].implode())), fresh])
        write_parquet_atomic(table.sort("url"), out_dir / TABLE)
    mine = table.filter(pl.col("url").is_in(pl.Series(wanted, dtype=pl.String).implode()))
    failed = mine.filter(pl.col("status") == STATUS_FAILED)
    report = FetchReport(
        requested=len(wanted), already_done=len(wanted) - len(new), fetched=len(todo), refused=refused.height,
        success=mine.height - failed.height, failed=failed.height,
        reasons={r: n for r, n in failed.group_by("reason").len().sort("reason").iter_rows()},
        run_reasons=run_reasons,
    )
    write_json_atomic(report.__dict__, out_dir / FETCH_STATS)
    return report


def collect_run(out_dir: Path, run: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """Table rows from one img2dataset run folder (its per-shard Parquet and stats files)."""
    run_dir = out_dir / run
    rows = []
    reasons: dict[str, int] = {}
    for stats in sorted(run_dir.glob("*_stats.json")):
        for status, n in (json.loads(stats.read_text()).get("status_dict") or {}).items():
            reasons[status] = reasons.get(status, 0) + int(n)
    for shard in sorted(run_dir.glob("[0-9]*.parquet")):
        frame = pl.read_parquet(shard)
        for rec in frame.iter_rows(named=True):
            rel = f"{run}/{shard.stem}/{rec['key']}.jpg"
            ok = rec.get("status") == STATUS_SUCCESS and (out_dir / rel).is_file()
            error = None if ok else (rec.get("error_message") or "no image file written")
            rows.append({
                "url": rec["url"], "status": STATUS_SUCCESS if ok else STATUS_FAILED, "path": rel if ok else None,
                "reason": None if ok else classify_error(error), "error": error,
                "width": rec.get("width") if ok else None, "height": rec.get("height") if ok else None, "run": run,
            })
    return pl.DataFrame(rows, schema=TABLE_SCHEMA), reasons


def format_report(report: FetchReport) -> str:
    lines = [f"{report.requested} URLs: {report.success} available, {report.failed} failed; "
             f"{report.fetched} fetched this run, {report.already_done} settled earlier"
             + (f", {report.refused} refused (only http and https are fetched)" if report.refused else "")]
    lines += [f"  failed {reason}: {n}" for reason, n in sorted(report.reasons.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


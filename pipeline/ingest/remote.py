"""Sources at fsspec URLs: annotation files read through a local copy, image roots listed remotely.

A source's file fields (``annotations``, ``questions``, ``path``, ...) may be URLs (``s3://bucket/...``).
``localize_source`` copies each such file (or folder: a ``datasets`` folder of ``type: tabular``) into the
run's work folder, ``_work/remote-sources/<source>/``, and returns the source config pointing at the copies:
the readers stream them with ijson as they stream any local file, and make their several passes (the
UTF-8 and surrogate checks, the parse) over local bytes. A copy is refreshed only when the remote object's
size, ETag or modification time changed (one metadata request per file), so an unchanged source is neither
copied again nor re-ingested (its ingest fingerprint is the copy's, which keeps its mtime).

An image root (``images``) may be a URL too: rows keep their image paths relative to it, the missing-image
check lists the remote prefix once (``RemoteImageRoot``), the manifest records the URL, and the trainer and
the exports open images through fsspec. Source types whose reader walks the image folder itself (to
resolve COCO ids or ImageNet synsets, or read a fetched url table) need a local image folder.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from pipeline.ingest.source import SourceBase, is_path_field
from pipeline.io import is_url, read_json, url_filesystem, write_json_atomic

REMOTE_SOURCES_DIR = "remote-sources"  # under the work folder: local copies of URL source files
REMOTE_META = ".remote.json"  # beside each copy: the remote object's identity when it was copied
# Readers that list or open files under `images` themselves (not only name them relative to it).
READS_IMAGE_FOLDER = ("aokvqa", "llava", "imagenet", "web_capfilt", "web_match")


def remote_identity(fs, path: str) -> dict:
    """What identifies the remote object's bytes without reading them: size plus ETag or mtime."""
    info = fs.info(path)
    keys = ("size", "ETag", "etag", "LastModified", "mtime", "last_modified", "type")
    return {k: str(info[k]) for k in keys if info.get(k) is not None}


def fetch_copy(url: str, dest_dir: Path) -> Path:
    """A local copy of the file or folder at ``url`` under ``dest_dir``, refreshed when the remote changed."""
    fs, path = url_filesystem(url)
    if not fs.exists(path):
        raise FileNotFoundError(f"{url}: source file not found (check the URL and the credentials)")
    identity = remote_identity(fs, path)
    dest = dest_dir / (Path(path.rstrip("/")).name or "data")
    meta = dest_dir / REMOTE_META
    if dest.exists() and read_json(meta) == {"url": url, **identity}:
        return dest
    tmp = dest_dir / f".{dest.name}.download"
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if identity.get("type") == "directory":
        fs.get(path.rstrip("/") + "/", str(tmp), recursive=True)
    else:
        fs.get_file(path, str(tmp))
    if dest.is_dir():
        shutil.rmtree(dest)
    tmp.replace(dest)
    write_json_atomic({"url": url, **identity}, meta)
    return dest


def localize_source(source: SourceBase, work_dir: str | Path) -> SourceBase:
    """``source`` with each URL file field replaced by its local copy (see the module's docstring)."""
    if is_url(source.images) and source.type in READS_IMAGE_FOLDER:
        raise ValueError(f"source {source.source_name!r}: images: {source.images} is a URL, but a {source.type} "
                         f"source reads its image folder at ingest; copy the images to a local folder "
                         f"(`fsspec`, `aws s3 sync`, ...) and point images at it")
    update = {}
    for name in type(source).model_fields:
        value = getattr(source, name)
        if name != "images" and is_url(value) and is_path_field(type(source), name):
            digest = hashlib.sha256(value.encode()).hexdigest()[:12]
            update[name] = fetch_copy(value, Path(work_dir) / REMOTE_SOURCES_DIR / source.source_name / digest)
    return source.model_copy(update=update) if update else source


class RemoteImageRoot:
    """An image root at a URL: which relative paths exist, from one listing of the prefix."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._files: frozenset[str] | None = None

    def files(self) -> frozenset[str]:
        if self._files is None:
            fs, root = url_filesystem(self.url)
            root = root.rstrip("/")
            names = fs.find(root) if fs.exists(root) else []
            self._files = frozenset(n[len(root) + 1:] for n in names if n.startswith(root + "/"))
        return self._files

    def is_file(self, rel: str) -> bool:
        return rel in self.files()

    def __str__(self) -> str:
        return self.url


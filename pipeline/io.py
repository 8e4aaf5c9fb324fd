"""Small file helpers: atomic writes and checksums. Every output goes through here."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

import polars as pl

PARQUET_COMPRESSION = "zstd"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _write_atomic(path: str | Path, write) -> Path:
    """Call ``write(tmp)``, fsync, and rename ``tmp`` to ``path``: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_parquet_atomic(frame: pl.DataFrame, path: str | Path, row_group_rows: int = 10_000) -> Path:
    """Write ``frame`` to ``path`` via a temporary name and rename into place (never half-written)."""
    return _write_atomic(path, lambda tmp: frame.write_parquet(
        tmp, compression=PARQUET_COMPRESSION, row_group_size=row_group_rows, statistics=True))


def sink_parquet_atomic(frame: pl.LazyFrame, path: str | Path, row_group_rows: int = 10_000) -> Path:
    """Stream ``frame`` to ``path`` like ``write_parquet_atomic`` (same bytes for the same rows and
    settings), with one row group in memory at a time."""
    return _write_atomic(path, lambda tmp: frame.sink_parquet(
        tmp, compression=PARQUET_COMPRESSION, row_group_size=row_group_rows, statistics=True))


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    return _write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(obj, path: str | Path) -> Path:
    return write_text_atomic(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n", path)


def read_json(path: str | Path):
    """The JSON value in ``path``, or None when the file is missing, unreadable or not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing or unreadable; ValueError: not UTF-8 or not JSON
        return None


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Put ``src``'s bytes at ``dst`` atomically: a hard link where possible, else a copy."""
    import shutil

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(dst)
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    """The sha256 of a local file or of an object at an fsspec URL."""
    h = hashlib.sha256()
    with open_location(path, "rb") if is_url(path) else open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def location_signature(location: str | Path) -> tuple:
    """What identifies a file's current version without reading it: (size, mtime in ns, inode) for a local
    file, (size, ETag or modification time) for an object at a URL. Raises ``FileNotFoundError``."""
    if not is_url(location):
        stat = os.stat(location)
        return stat.st_size, stat.st_mtime_ns, stat.st_ino
    fs, path = url_filesystem(str(location))
    info = fs.info(path)
    return int(info.get("size") or 0), str(info.get("ETag") or info.get("LastModified") or info.get("mtime") or "")


def outside_output(out_dir: Path, rel: str) -> str | None:
    """Why ``rel`` does not name a path inside ``out_dir`` (absolute, ``..``, a link out), else None."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel or (pure.parts and ":" in pure.parts[0]):
        return f"path {rel!r} leaves the output folder"
    root = out_dir.resolve()
    target = (out_dir / rel).resolve()
    if target != root and root not in target.parents:
        return f"path {rel!r} resolves outside the output folder ({target})"
    return None


# -- fsspec locations ---------------------------------------------------------------------------------
# A source file, an image root or an output may be any fsspec URL (``s3://``, ``gs://``, ``hf://``,
# ``https://``...): the protocol's package (s3fs, gcsfs, huggingface_hub) must be installed, and its
# credentials come from where that package looks for them (``AWS_*`` variables, ``~/.aws``, ``HF_TOKEN``).


def is_url(location: object) -> bool:
    """True for ``protocol://...`` (any fsspec protocol but ``file``); False for a local path."""
    if not isinstance(location, str) or "://" not in location:
        return False
    return location.split("://", 1)[0].lower() not in ("", "file", "local")


def url_filesystem(url: str):
    """``(filesystem, path)`` of a URL, through fsspec (the protocol's package must be installed)."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:  # e.g. s3fs missing for s3://
        raise ImportError(f"{url}: this protocol needs a package fsspec names: {e}") from e


def join_location(root: str | Path, rel: str) -> str | Path:
    """``root / rel`` for a local folder, ``root.rstrip('/') + '/' + rel`` for a URL."""
    if is_url(root):
        return f"{str(root).rstrip('/')}/{rel.lstrip('/')}"
    return Path(root) / rel


def open_location(location: str | Path, mode: str = "rb"):
    """A file object for a local path or any fsspec URL (what ijson, PIL, polars and pyarrow read)."""
    if is_url(location):
        import fsspec

        return fsspec.open(str(location), mode).open()
    return open(location, mode)

"""Digests of source files by content, kept between runs while a file's status is unchanged.

A source is ingested again when its files' bytes change (``pipeline.ingest.stage.source_fingerprint``).
Size and mtime alone miss an edit that keeps the size and restores the mtime (``touch -d``, ``os.utime``,
``cp -p`` over the file, some sync tools): such a source was reused with stale rows. Hashing every file on
every run would read many gigabytes for nothing, so a digest is reused while the file's *status* is
unchanged: size, mtime, ctime, inode and device. The ctime is set by the kernel on every write, rename and
``utime`` call and no user call can set it back, so any edit or replacement is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from pipeline.io import write_json_atomic

# A file whose status changed less than this before it was hashed may change again without its status
# changing (timestamps have a granularity; git calls such entries "racily clean"): its digest is not reused.
RACY_NS = 2_000_000_000
BLOCK = 1 << 20


def hash_file(path: str | Path) -> str:
    """A digest of the file's bytes, named by its algorithm: xxh3-128 where ``xxhash`` is installed (about
    9 GB/s, so reading the disk is the cost), else BLAKE2b-128 from the standard library (about 0.6 GB/s)."""
    try:
        import xxhash

        h, name = xxhash.xxh3_128(), "xxh3_128"
    except ImportError:
        h, name = hashlib.blake2b(digest_size=16), "blake2b"
    with Path(path).open("rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return f"{name}:{h.hexdigest()}"


class FileDigests:
    """File digests (``hash_file``) with a JSON cache (``path``: None = no cache, every file is hashed)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self.known = self._load()
        self.changed = False

    def _load(self) -> dict:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            known = json.loads(self.path.read_text())
        except (OSError, ValueError):  # a damaged cache only costs hashing again
            return {}
        return known if isinstance(known, dict) else {}

    def digest(self, path: Path) -> str:
        """The digest of ``path``'s bytes, from the cache while its status is unchanged and was not racy."""
        st = path.stat()
        status = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        key = str(path)
        entry = self.known.get(key)
        if isinstance(entry, dict) and entry.get("status") == status and entry.get("trusted"):
            return entry["digest"]
        started = time.time_ns()
        digest = hash_file(path)
        self.known[key] = {"status": status, "digest": digest, "trusted": st.st_ctime_ns < started - RACY_NS}
        self.changed = True
        return digest

    def save(self) -> None:
        if self.path is not None and self.changed:
            write_json_atomic(self.known, self.path)
            self.changed = False

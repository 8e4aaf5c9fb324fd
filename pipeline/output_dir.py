"""The output folder: what makes a folder an output of this tool, and the checks before a run writes.

A run writes only into an empty or new folder, or into an earlier output of this tool (one that has
a manifest, a resolved config or a work folder). Anything else is refused before any file is
touched: the user's own files are never treated as stale outputs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import time
from pathlib import Path

MANIFEST = "manifest.json"  # every output file with rows, bytes and sha256; written last, so it means "complete"
WORK_DIR = "_work"  # chunks, caches and staging of a run, under the output folder
RESOLVED_CONFIG = "config.resolved.yaml"  # the config a run used, written next to its outputs
OUTPUT_MARKERS = (MANIFEST, RESOLVED_CONFIG, WORK_DIR)


def is_tool_output(path: Path) -> bool:
    return any((path / marker).exists() for marker in OUTPUT_MARKERS)


def check_output_dir(path: str | Path) -> Path:
    """Raise a clear error unless ``path`` can be an output folder; returns it as a Path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "the output folder is a file, not a folder", str(path))
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "the output folder is not writable", str(path))
        if any(path.iterdir()) and not is_tool_output(path):
            raise ValueError(
                f"{path}: the output folder is not empty and is not an output of this tool (no {MANIFEST}, "
                f"{RESOLVED_CONFIG} or {WORK_DIR}/): refusing to write into it; choose an empty or new folder"
            )
    else:
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "a parent of the output folder is a file", str(parent))
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "cannot create the output folder here", str(parent))
    return path


def check_existing_output(path: str | Path) -> Path:
    """Raise unless ``path`` is an earlier output of this tool (what ``regenerate`` updates). Touches
    nothing: a folder that is not an output gets no lock file (which would make it look like one), a
    missing path is not created."""
    path = Path(path)
    how = f"regenerate updates a finished dataset; make one with: mblip generate CONFIG --out {path}"
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"no such output folder ({how})", str(path))
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "the output folder is a file, not a folder", str(path))
    if not is_tool_output(path):
        raise ValueError(f"{path}: not an output of this tool (no {MANIFEST}, {RESOLVED_CONFIG} or {WORK_DIR}/); {how}")
    return path


LOCK_FILE = "_work/.lock"  # under the output folder; holds the holder's description
_HELD: dict[str, list] = {}  # resolved output path -> [open lock file, depth] in this process


class OutputLockedError(ValueError):
    """Another run holds the output folder."""


@contextlib.contextmanager
def output_lock(out_dir: str | Path):
    """Exclusive lock on an output folder for the whole run (``fcntl.flock``; released by the kernel
    when the holder dies, even by SIGKILL). Re-entrant within a process. A second run refuses at once,
    naming the holder: two runs into one folder would share its work files and publish a mix."""
    import fcntl

    path = Path(out_dir).resolve() / LOCK_FILE
    key = str(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OutputLockedError(f"{path.parent.parent}: another run is writing this output ({holder}); wait for it "
                                "to finish, or choose another --out") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}, "
                 f"command: {' '.join(sys.argv)[:300]}\n")
    handle.flush()
    _HELD[key] = [handle, 1]
    try:
        yield
    finally:
        _HELD.pop(key, None)
        handle.seek(0)
        handle.truncate()  # no stale holder text once released
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()

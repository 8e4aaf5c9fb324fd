"""Publishing: the complete output is built in a staging folder, then only what changed moves in.

``STAGING_DIR`` (``_work/staging`` under the output folder) belongs to this tool entirely: every file of
the current write is put there (shards, stats, card, plots, the resolved config, the manifest), and
anything else found there is removed before the publish. ``publish`` then compares staging with the
output folder byte by byte and moves in only new or changed files. The manifest is compared like any
other file (``stage_manifest`` keeps the published ``created`` when nothing else differs), so an
unchanged rerun rewrites nothing. When something changed, the published manifest is removed before
the first file moves and the new one is written last: its presence still means "complete". Stale
files are deleted only when this tool owns them (``owned_files``: the published manifest's files and
the ownership record ``OWNED_FILES``, written before anything moves, so a publish killed half-way
loses no ownership). A rerun after such a kill rebuilds staging, reusing shard groups from staging or
from the output folder (see ``pipeline/outputs/shards.py``), and publishes again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import outside_output, read_json, sha256_file, write_bytes_atomic, write_json_atomic, write_text_atomic
from pipeline.kill_points import kill_point
from pipeline.output_dir import MANIFEST, WORK_DIR

log = logging.getLogger(__name__)

STAGING_DIR = f"{WORK_DIR}/staging"  # the complete output of the current write, before it is published
# What this tool has published into an output (paths relative to it), kept across a publish that is
# killed after the old manifest was removed: only these files are ever deleted as stale, never a
# file of the user's that happens to sit in a shard folder.
OWNED_FILES = f"{WORK_DIR}/published-files.json"


@dataclass(frozen=True)
class PublishReport:
    replaced: tuple[str, ...]  # files written (new or changed), relative paths
    unchanged: tuple[str, ...]  # files already identical in the output folder
    removed: tuple[str, ...]  # stale files removed from the output folder


def stage_file(staging: Path, rel: str, content: str | bytes) -> dict:
    """Write a non-shard file (stats, card, plot, config) into staging; returns its manifest entry."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if isinstance(content, str):
        write_text_atomic(content, staging / rel)
    else:
        write_bytes_atomic(data, staging / rel)
    return {"path": rel, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def stage_manifest(staging: Path, out_dir: Path, manifest: dict) -> dict:
    """Write ``manifest`` (its ``created`` is set here) into staging, last of the staged files.

    ``created`` is the published manifest's when everything else is the same, so that the staged
    manifest has the published one's bytes and an unchanged rerun rewrites nothing; otherwise now."""
    previous = read_json(out_dir / MANIFEST)
    same = isinstance(previous, dict) and previous == {**manifest, "created": previous.get("created")}
    manifest = {**manifest, "created": previous["created"] if same else _now()}
    write_json_atomic(manifest, staging / MANIFEST)
    return manifest


def clear_staging(staging: Path, keep: set[str]) -> None:
    """Remove from staging every file that is not part of the current write (``keep``, relative paths):
    groups of another write, a killed write's temporary files. Staging belongs to this tool."""
    if not staging.is_dir():
        return
    for path in sorted(staging.rglob("*")):
        if path.is_file() and path.relative_to(staging).as_posix() not in keep:
            path.unlink()
    for path in sorted(staging.rglob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def select_changed(staging: str | Path, out_dir: str | Path) -> tuple[list[str], list[str], list[str]]:
    """Compare a staged output with the published one: (changed or new, unchanged, stale) paths.

    Every file, the manifest included, is compared by its bytes. Stale means a file this tool
    published earlier (listed by the published manifest or by the ownership record, see
    ``OWNED_FILES``) that the staged output no longer has.
    """
    staging, out_dir = Path(staging), Path(out_dir)
    staged = _files(staging)
    changed, same = [], []
    for rel, path in staged.items():
        target = out_dir / rel
        if target.is_file() and target.stat().st_size == path.stat().st_size \
                and sha256_file(target) == sha256_file(path):
            same.append(rel)
        else:
            changed.append(rel)
    published = owned_files(out_dir)
    stale = sorted(rel for rel in published if rel not in staged and (out_dir / rel).is_file())
    return changed, same, stale


def owned_files(out_dir: str | Path) -> set[str]:
    """Paths this tool published into ``out_dir``: its manifest's files plus the ownership record.
    Entries that are malformed or leave the output folder are ignored (never deleted)."""
    out_dir = Path(out_dir)
    owned: set[str] = set()
    for source in (out_dir / MANIFEST, out_dir / OWNED_FILES):
        data = read_json(source)
        if isinstance(data, dict):  # a manifest
            entries = [e for key in ("files", "meta_files") for e in (data.get(key) or [])
                       if isinstance(data.get(key), list)]
            paths = [e.get("path") for e in entries if isinstance(e, dict)]
        else:  # the ownership record: a list of paths
            paths = data if isinstance(data, list) else []
        owned |= {p for p in paths if isinstance(p, str) and p and outside_output(out_dir, p) is None}
    return owned


def publish(staging: str | Path, out_dir: str | Path) -> PublishReport:
    """Move the changed files of ``staging`` into ``out_dir``; manifest removed first, written last.

    Nothing in ``out_dir`` is touched when nothing changed. Staging is removed at the end."""
    staging, out_dir = Path(staging), Path(out_dir)
    changed, same, stale = select_changed(staging, out_dir)
    staged_paths = sorted(set(changed) | set(same))
    if changed or stale:
        # Before anything changes: what is owned now and what will be, so a kill below loses no ownership.
        write_json_atomic(sorted(owned_files(out_dir) | set(staged_paths)), out_dir / OWNED_FILES)
    files = [rel for rel in changed if rel != MANIFEST]
    manifest = out_dir / MANIFEST
    if files or stale:
        manifest.unlink(missing_ok=True)  # the output is incomplete until the new manifest lands
        if MANIFEST in same:  # same bytes, but it has to be put back
            same.remove(MANIFEST)
            changed.append(MANIFEST)
    for rel in files:
        _move(staging / rel, out_dir / rel)
        kill_point("publish")  # a test hook (MBLIP_KILL_AT): a file published, the manifest not yet
    for rel in stale:
        _remove(out_dir, rel)
    if MANIFEST in changed:
        _move(staging / MANIFEST, manifest)
    if read_json(out_dir / OWNED_FILES) != staged_paths:
        write_json_atomic(staged_paths, out_dir / OWNED_FILES)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("outputs published to %s: %d files written, %d unchanged, %d stale removed", out_dir, len(changed),
             len(same), len(stale))
    return PublishReport(tuple(changed), tuple(same), tuple(stale))


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _remove(out_dir: Path, rel: str) -> None:
    """Delete a stale file, and the folders it leaves empty up to the output folder."""
    path = out_dir / rel
    path.unlink()
    for parent in path.parents:
        if parent == out_dir or not parent.is_relative_to(out_dir) or any(parent.iterdir()):
            break
        parent.rmdir()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

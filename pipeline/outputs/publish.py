"""Publishing a staged output: only files whose bytes differ move in; the manifest goes last.

The new outputs are written in full to a staging folder, then only the files whose bytes differ from
what is in the output folder are moved in; the manifest goes last (and is removed first, so its
presence still means "complete").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import sha256_file, write_json_atomic
from pipeline.output_dir import MANIFEST, WORK_DIR

log = logging.getLogger(__name__)

# What this tool has published into an output (paths relative to it), kept across a publish that is
# killed after the old manifest was removed: only these files are ever deleted as stale, never a
# file of the user's that happens to sit in a shard folder.
OWNED_FILES = f"{WORK_DIR}/published-files.json"


@dataclass(frozen=True)
class PublishReport:
    replaced: tuple[str, ...]  # files written (new or changed), relative paths
    unchanged: tuple[str, ...]  # files already identical in the output folder
    removed: tuple[str, ...]  # stale files removed from the output folder


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def select_changed(staging: str | Path, out_dir: str | Path) -> tuple[list[str], list[str], list[str]]:
    """Compare a staged output with the published one: (changed or new, unchanged, stale) paths.

    Stale means a file this tool published earlier (listed by the published manifest or by the
    ownership record, see ``OWNED_FILES``) that the staged output no longer has. The manifest always
    counts as changed (it carries the creation time).
    """
    staging, out_dir = Path(staging), Path(out_dir)
    staged = _files(staging)
    changed, same = [], []
    for rel, path in staged.items():
        target = out_dir / rel
        if rel != MANIFEST and target.is_file() and target.stat().st_size == path.stat().st_size \
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
    from pipeline.io import outside_output

    out_dir = Path(out_dir)
    owned: set[str] = set()
    for source in (out_dir / MANIFEST, out_dir / OWNED_FILES):
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):  # a manifest
            entries = [e for key in ("files", "meta_files") for e in (data.get(key) or [])
                       if isinstance(data.get(key), list)]
            paths = [e.get("path") for e in entries if isinstance(e, dict)]
        else:  # the ownership record: a list of paths
            paths = data if isinstance(data, list) else []
        owned |= {p for p in paths if isinstance(p, str) and p and outside_output(out_dir, p) is None}
    return owned


def publish(staging: str | Path, out_dir: str | Path) -> PublishReport:
    """Move the changed files of ``staging`` into ``out_dir``; manifest removed first, written last."""
    staging, out_dir = Path(staging), Path(out_dir)
    changed, same, stale = select_changed(staging, out_dir)
    manifest = out_dir / MANIFEST
    # Before anything changes: what is owned now and what will be, so a kill below loses no ownership.
    staged_paths = sorted(set(changed) | set(same))
    write_json_atomic(sorted(owned_files(out_dir) | set(staged_paths)), out_dir / OWNED_FILES)
    if changed != [MANIFEST] or stale:
        manifest.unlink(missing_ok=True)  # the output is incomplete until the new manifest lands
    for rel in changed:
        if rel == MANIFEST:
            continue
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, out_dir / rel)
    for rel in stale:
        (out_dir / rel).unlink()
    if MANIFEST in changed:
        os.replace(staging / MANIFEST, manifest)
    write_json_atomic(staged_paths, out_dir / OWNED_FILES)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("published %s: %d files written, %d unchanged, %d stale removed", out_dir, len(changed), len(same), len(stale))
    return PublishReport(tuple(changed), tuple(same), tuple(stale))

"""Publishing a finished output to an fsspec URL (``s3://``, ``gs://``, ``hf://``, ...), and verifying one there.

A URL output is built like any other in a local folder (``output.local``: locks, atomic renames, the work
folder and the staging folder need a real filesystem); ``publish_remote`` then makes the remote prefix equal
the local output, ``_work/`` excepted:

- The local side is each file's sha256 (the manifest's entries, hashed for the few files it does not list).
- The remote side is one listing (sizes) plus what is known of the remote bytes: the remote manifest's
  sha256 per file, and the upload journal ``_work/remote-published.json`` of the local folder, which
  records each file's sha256 and size as soon as its upload finished.
- A file is uploaded only when its sha256 differs from the remote's (or the remote copy is missing or of
  another size). When anything is uploaded or removed, the remote manifest is deleted first and uploaded
  last: a reader that finds ``manifest.json`` finds a complete output, as with a local publish.
- The manifest records when and how the output was built (``RUN_KEYS``): a rerun whose manifest differs
  only there publishes nothing, so an unchanged rerun uploads no file at all.
- Killed half-way, a rerun uploads only what the journal does not show as done (the remote manifest is
  gone by then, and the listing confirms each journaled file's size). Stale files are removed only when
  this tool put them there (listed by the old remote manifest or the journal).

``verify_remote`` downloads the output (``_work/`` excepted) into a temporary folder and runs ``mblip
verify``'s checks on those bytes: a sha256 needs every byte anyway.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import read_json, sha256_file, url_filesystem, write_json_atomic
from pipeline.output_dir import MANIFEST, WORK_DIR
from pipeline.verify import VerifyReport, verify_output

log = logging.getLogger(__name__)

JOURNAL = f"{WORK_DIR}/remote-published.json"  # {"url": URL, "files": {rel: {"sha256", "bytes"}}}
# Manifest keys that describe a run rather than the output (its time, its chunks reused or processed): a
# rerun that changes only these has nothing to publish, and the remote manifest keeps the last publish's.
RUN_KEYS = ("created", "run")


@dataclass(frozen=True)
class RemotePublishReport:
    url: str
    uploaded: tuple[str, ...]  # files uploaded (new or changed), the manifest last when it is among them
    unchanged: tuple[str, ...]  # files whose remote copy already has the local sha256
    removed: tuple[str, ...]  # stale files this tool had published, deleted remotely


def local_files(out_dir: Path) -> dict[str, dict]:
    """Every file of a local output (``_work/`` and hidden files excepted): rel -> {sha256, bytes}.

    The manifest's entries give the sha256 of the shards and metadata (no re-hashing of large files);
    the others (the manifest itself, the resolved config) are hashed."""
    manifest = read_json(out_dir / MANIFEST)
    if not isinstance(manifest, dict):
        raise FileNotFoundError(f"{out_dir / MANIFEST}: missing or unreadable; only a finished output is published")
    known = {e["path"]: e for key in ("files", "meta_files") for e in manifest.get(key) or []}
    files = {}
    for path in sorted(out_dir.rglob("*")):
        rel = path.relative_to(out_dir).as_posix()
        if not path.is_file() or rel.startswith(f"{WORK_DIR}/") or any(p.startswith(".") for p in rel.split("/")):
            continue
        size = path.stat().st_size
        entry = known.get(rel)
        digest = entry["sha256"] if entry and entry.get("bytes") == size else sha256_file(path)
        files[rel] = {"sha256": digest, "bytes": size}
    return files


def _remote_listing(fs, root: str) -> dict[str, int]:
    """rel -> size of every file under the remote prefix (one listing)."""
    if not fs.exists(root):
        return {}
    found = fs.find(root, detail=True)
    prefix = root.rstrip("/") + "/"
    return {name[len(prefix):]: int(info.get("size") or 0) for name, info in found.items()
            if info.get("type", "file") == "file" and name.startswith(prefix)}


def _remote_manifest(fs, root: str) -> dict | None:
    """The remote output's manifest, or None when there is none (or it is not a JSON object)."""
    try:
        manifest = json.loads(fs.cat_file(f"{root}/{MANIFEST}"))
    except (FileNotFoundError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_files(manifest: dict | None) -> dict[str, dict]:
    """rel -> {sha256, bytes} of the files a manifest certifies (empty for None)."""
    entries = [e for key in ("files", "meta_files") for e in ((manifest or {}).get(key) or [])]
    return {e["path"]: {"sha256": e.get("sha256"), "bytes": e.get("bytes")} for e in entries
            if isinstance(e, dict) and isinstance(e.get("path"), str)}


def same_output(a: dict | None, b: dict | None) -> bool:
    """Two manifests certify the same output: equal but for ``RUN_KEYS`` (when and how it was built)."""
    return a is not None and b is not None and \
        {k: v for k, v in a.items() if k not in RUN_KEYS} == {k: v for k, v in b.items() if k not in RUN_KEYS}


def plan_remote_publish(local: dict[str, dict], listing: dict[str, int], remote_manifest: dict[str, dict],
                        journal: dict[str, dict]) -> tuple[list[str], list[str], list[str]]:
    """(to upload, unchanged, stale) for local files ``local`` against the remote's ``listing`` (sizes), its
    manifest's entries and the upload journal. The manifest itself is compared by its sha256 like any file."""
    upload, same = [], []
    for rel, want in local.items():
        size = listing.get(rel)
        known = [entry for entry in (journal.get(rel), remote_manifest.get(rel)) if entry]
        if size == want["bytes"] and any(entry.get("sha256") == want["sha256"] for entry in known):
            same.append(rel)
        else:
            upload.append(rel)
    owned = set(remote_manifest) | set(journal)
    stale = sorted(rel for rel in owned if rel not in local and rel in listing)
    return upload, same, stale


def publish_remote(out_dir: str | Path, url: str, *, fs=None,
                   after_upload: Callable[[str], None] | None = None) -> RemotePublishReport:
    """Upload the changed files of the finished local output ``out_dir`` to ``url``; manifest last.

    ``fs``: an fsspec filesystem to use (default: the URL's). ``after_upload(rel)`` is called after each
    file's upload is journaled (progress)."""
    out_dir = Path(out_dir)
    if fs is None:
        fs, root = url_filesystem(url)
    else:
        root = fs._strip_protocol(url)
    root = root.rstrip("/")
    local = local_files(out_dir)
    journal_path = out_dir / JOURNAL
    record = read_json(journal_path)
    journal = record["files"] if isinstance(record, dict) and record.get("url") == url else {}
    remote_manifest = _remote_manifest(fs, root)
    upload, same, stale = plan_remote_publish(local, _remote_listing(fs, root), manifest_files(remote_manifest),
                                              journal)
    if upload == [MANIFEST] and not stale and same_output(read_json(out_dir / MANIFEST), remote_manifest):
        upload, same = [], [*same, MANIFEST]  # only the run record differs: the output is the same
    files = [rel for rel in upload if rel != MANIFEST]
    if (files or stale) and MANIFEST in same:  # removed below, so it has to be put back
        same.remove(MANIFEST)
    manifest_url = f"{root}/{MANIFEST}"
    if (files or stale) and fs.exists(manifest_url):
        fs.rm_file(manifest_url)  # the remote output is incomplete from here until the new manifest lands

    def journaled(rel: str, entry: dict | None) -> None:
        if entry is None:
            journal.pop(rel, None)
        else:
            journal[rel] = entry
        write_json_atomic({"url": url, "files": journal}, journal_path)

    for rel in files:
        fs.put_file(str(out_dir / rel), f"{root}/{rel}")
        journaled(rel, local[rel])
        if after_upload is not None:
            after_upload(rel)
    for rel in stale:
        fs.rm_file(f"{root}/{rel}")
        journaled(rel, None)
    uploaded = list(files)
    if files or stale or MANIFEST in upload:
        fs.put_file(str(out_dir / MANIFEST), manifest_url)
        journaled(MANIFEST, local[MANIFEST])
        uploaded.append(MANIFEST)
    log.info("published to %s: %d files uploaded, %d unchanged, %d stale removed", url, len(uploaded), len(same),
             len(stale))
    return RemotePublishReport(url, tuple(uploaded), tuple(same), tuple(stale))


def verify_remote(url: str, *, fs=None) -> VerifyReport:
    """``verify_output`` on the output at ``url``: its files (``_work/`` excepted) are downloaded into a
    temporary folder and checked there; the report names the URL."""
    if fs is None:
        fs, root = url_filesystem(url)
    else:
        root = fs._strip_protocol(url)
    root = root.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="mblip-verify-") as tmp:
        for rel in _remote_listing(fs, root):
            if not rel.startswith(f"{WORK_DIR}/"):
                (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(f"{root}/{rel}", str(Path(tmp) / rel))
        report = verify_output(tmp)
    report.out_dir = url
    return report

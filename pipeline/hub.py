"""``mblip push FOLDER REPO_ID``: a finished output (a datasets repo) or an exported model (a model repo) on the
Hugging Face Hub, in one commit holding only the files that differ from the remote.

The plan (``plan_push``) is a pure function of the local files and the remote listing:

- Local side: each file's sha256 (an output's manifest gives it for the shards and metadata; the others are
  hashed) and, for files under ``LFS_CANDIDATE_BYTES``, its git blob id (``git hash-object``: small text files
  are stored in git, not LFS, and the Hub reports only their blob id).
- Remote side: ``HfApi.list_repo_tree(recursive=True, expand=True)`` (``RepoFile``: size, ``blob_id``, and
  ``lfs.sha256`` for LFS files).
- A file is uploaded when the remote has none at its path, or one of another size or checksum. A remote file
  is deleted only when the remote output's manifest lists it and the local output no longer has it (an
  output's own stale shards; a file of anyone else is never touched; a model folder deletes nothing).
- ``_work/`` (chunks, caches, staging, the lock) is never uploaded, nor hidden files.

The commit is atomic on the Hub: readers see the old revision or the new one, never a mix, so the manifest
needs no ordering here. Resume: an interrupted push is run again; files committed before are unchanged and
skipped, and LFS objects uploaded before the interruption are not sent again (the Hub's LFS batch endpoint
asks only for objects it lacks; ``huggingface_hub`` checks before uploading).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import read_json, sha256_file
from pipeline.output_dir import MANIFEST, WORK_DIR
from pipeline.outputs.remote import manifest_files

log = logging.getLogger(__name__)

LFS_CANDIDATE_BYTES = 10 * 1024 * 1024  # the Hub stores files over 10 MB in LFS; smaller ones may be git blobs
REPO_DATASET, REPO_MODEL = "dataset", "model"


@dataclass(frozen=True)
class LocalFile:
    path: Path
    bytes: int
    sha256: str
    git_sha1: str | None  # git blob id; None for files that can only be LFS on the Hub


@dataclass(frozen=True)
class RemoteFile:
    size: int
    blob_id: str | None
    lfs_sha256: str | None


@dataclass(frozen=True)
class PushPlan:
    upload: tuple[str, ...]  # new or changed files (paths in the repo)
    unchanged: tuple[str, ...]
    delete: tuple[str, ...]  # the remote output's own files the local output no longer has


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file's bytes (``git hash-object``): sha1 of ``blob <size>\\0`` + content."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def local_push_files(folder: str | Path) -> dict[str, LocalFile]:
    """Every file to push from ``folder`` (``_work/`` and hidden files excepted), by repo path."""
    folder = Path(folder)
    known = manifest_files(read_json(folder / MANIFEST) if (folder / MANIFEST).is_file() else None)
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.startswith(f"{WORK_DIR}/") or any(p.startswith(".") for p in rel.split("/")):
            continue
        size = path.stat().st_size
        entry = known.get(rel)
        sha256 = entry["sha256"] if entry and entry.get("bytes") == size else sha256_file(path)
        files[rel] = LocalFile(path, size, sha256, git_blob_sha1(path) if size < LFS_CANDIDATE_BYTES else None)
    return files


def remote_files(listing: Iterable) -> dict[str, RemoteFile]:
    """The files of a Hub listing (``RepoFile`` objects of ``list_repo_tree``; folders are skipped)."""
    files = {}
    for item in listing:
        if not hasattr(item, "blob_id"):  # a RepoFolder
            continue
        lfs = getattr(item, "lfs", None)
        files[item.path] = RemoteFile(int(item.size), item.blob_id, lfs.sha256 if lfs is not None else None)
    return files


def plan_push(local: dict[str, LocalFile], remote: dict[str, RemoteFile], remote_manifest: dict | None) -> PushPlan:
    """What one commit has to do to make the repo hold ``local`` (see the module's docstring)."""
    upload, same = [], []
    for rel, want in sorted(local.items()):
        have = remote.get(rel)
        unchanged = have is not None and have.size == want.bytes and (
            have.lfs_sha256 == want.sha256 if have.lfs_sha256 else have.blob_id == want.git_sha1)
        (same if unchanged else upload).append(rel)
    owned = manifest_files(remote_manifest)
    delete = sorted(rel for rel in owned if rel in remote and rel not in local)
    return PushPlan(tuple(upload), tuple(same), tuple(delete))


def repo_type_of(folder: str | Path) -> str:
    """``dataset`` for a pipeline output (it has a manifest), ``model`` for an exported model (a config.json)."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return REPO_DATASET
    if (folder / "config.json").is_file():
        return REPO_MODEL
    raise ValueError(f"{folder}: neither a finished output ({MANIFEST}) nor an exported model (config.json); "
                     "push a folder written by `mblip generate` or `mblip export-model`")


def plan_remote(folder: str | Path, repo_id: str, *, revision: str | None = None, token: str | None = None,
                api=None) -> PushPlan:
    """The plan of pushing ``folder`` to ``repo_id`` now (one listing, plus the remote manifest of an output)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    folder = Path(folder)
    repo_type = repo_type_of(folder)
    api = api or HfApi(token=token)
    try:
        listing = list(api.list_repo_tree(repo_id, recursive=True, expand=True, revision=revision,
                                          repo_type=repo_type))
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
        listing = []  # no repository, branch or tree yet: everything is new
    remote = remote_files(listing)
    remote_manifest = None
    if repo_type == REPO_DATASET and MANIFEST in remote:
        path = api.hf_hub_download(repo_id=repo_id, filename=MANIFEST, repo_type=repo_type, revision=revision)
        remote_manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    return plan_push(local_push_files(folder), remote, remote_manifest)


def push(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         token: str | None = None, api=None) -> PushPlan:
    """Push ``folder`` to ``repo_id`` in one commit of the files that differ (see the module's docstring)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    folder = Path(folder)
    repo_type = repo_type_of(folder)
    api = api or HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    plan = plan_remote(folder, repo_id, revision=revision, token=token, api=api)
    if not plan.upload and not plan.delete:
        log.info("%s is up to date on the Hub (%d files unchanged): nothing to commit", repo_id, len(plan.unchanged))
        return plan
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)) for rel in plan.upload]
    operations += [CommitOperationDelete(path_in_repo=rel) for rel in plan.delete]
    api.create_commit(repo_id, operations, repo_type=repo_type, revision=revision,
                      commit_message=f"mblip push: {len(plan.upload)} files added or changed, {len(plan.delete)} "
                                     f"removed, {len(plan.unchanged)} unchanged")
    log.info("pushed %s to %s (%s): %d uploaded, %d removed, %d unchanged", folder, repo_id, repo_type,
             len(plan.upload), len(plan.delete), len(plan.unchanged))
    return plan

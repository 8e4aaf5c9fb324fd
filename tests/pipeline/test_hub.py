"""``mblip push``'s commit plan against a remote listing in the Hub's tree format (``tests/data/hub``: the
entries ``list_repo_tree(expand=True)`` parses, checksums taken with ``git hash-object`` and ``sha256sum`` of
the remote's bytes); no network."""

import json
from pathlib import Path

from huggingface_hub.hf_api import RepoFile, RepoFolder

from pipeline.hub import git_blob_sha1, local_push_files, plan_push, remote_files, repo_type_of

DATA = Path(__file__).resolve().parents[1] / "data" / "hub"


def _listing():
    return [RepoFile(**e) if e["type"] == "file" else RepoFolder(**e)
            for e in json.loads((DATA / "remote_tree.json").read_text())]


def test_plan_uploads_only_what_differs_and_removes_only_the_outputs_own_stale_files():
    local = local_push_files(DATA / "output")
    assert not [rel for rel in local if rel.startswith("_work/")]
    plan = plan_push(local, remote_files(_listing()), json.loads((DATA / "remote_manifest.json").read_text()))
    # README.md: same git blob; data/de: same LFS sha256
    assert plan.unchanged == ("README.md", "data/de/part-00000.parquet")
    # data/fr and stats.json changed, data/it is new, the manifest differs
    assert plan.upload == ("data/fr/part-00000.parquet", "data/it/part-00000.parquet", "manifest.json", "stats.json")
    # data/cs: listed by the remote manifest, gone locally; .gitattributes and notes.md are not the output's
    assert plan.delete == ("data/cs/part-00000.parquet",)


def test_an_up_to_date_repo_plans_nothing():
    local = local_push_files(DATA / "output")
    remote = [RepoFile(path=rel, size=f.bytes, oid=f.git_sha1 if not rel.endswith(".parquet") else "0" * 40,
                       **({"lfs": {"oid": f.sha256, "size": f.bytes, "pointerSize": 130}}
                          if rel.endswith(".parquet") else {}))
              for rel, f in local.items()]
    plan = plan_push(local, remote_files(remote), json.loads((DATA / "output" / "manifest.json").read_text()))
    assert plan.upload == () and plan.delete == () and len(plan.unchanged) == len(local)


def test_git_blob_id_is_gits(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"")
    assert git_blob_sha1(path) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob


def test_repo_type_follows_the_folder(tmp_path):
    assert repo_type_of(DATA / "output") == "dataset"
    (tmp_path / "config.json").write_text("{}")
    assert repo_type_of(tmp_path) == "model"


class RecordedHub:
    """The Hub API calls ``push`` makes, answered from the recorded listing; commits are recorded, not sent."""

    def __init__(self):
        self.commits = []
        self.repos = []

    def create_repo(self, repo_id, repo_type, private, exist_ok):
        self.repos.append((repo_id, repo_type, private))

    def create_branch(self, repo_id, branch, repo_type, exist_ok):
        self.repos.append((repo_id, branch))

    def list_repo_tree(self, repo_id, recursive, expand, revision, repo_type):
        assert recursive and expand
        return _listing()

    def hf_hub_download(self, repo_id, filename, repo_type, revision):
        return str(DATA / "remote_manifest.json")

    def create_commit(self, repo_id, operations, repo_type, revision, commit_message):
        self.commits.append((repo_type, revision, [(type(op).__name__, op.path_in_repo) for op in operations]))


def test_push_makes_one_commit_of_the_plan_and_never_sends_the_work_folder():
    from pipeline.hub import push

    hub = RecordedHub()
    plan = push(DATA / "output", "me/data", private=True, revision="v2", api=hub)
    assert hub.repos == [("me/data", "dataset", True), ("me/data", "v2")]
    ((repo_type, revision, ops),) = hub.commits
    assert repo_type == "dataset" and revision == "v2"
    assert ops == [("CommitOperationAdd", rel) for rel in plan.upload] + \
        [("CommitOperationDelete", "data/cs/part-00000.parquet")]
    assert not [rel for _, rel in ops if rel.startswith("_work")]

"""``mblip push FOLDER REPO_ID``: a finished output or an exported model to the Hugging Face Hub (``pipeline.hub``)."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("push", help="upload an output (datasets repo) or an exported model (model repo) to the Hub, "
                                    "in one commit of the files that differ")
    p.add_argument("folder", type=Path,
                   help="a finished output (holds manifest.json) or an `mblip export-model` folder")
    p.add_argument("repo_id", help="Hub repository, e.g. me/mblip-data (created when missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision", default=None, help="branch to commit to (created from main when missing)")
    p.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the cached `hf auth login` token)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, upload nothing")
    p.set_defaults(handler="hub:cmd_push")

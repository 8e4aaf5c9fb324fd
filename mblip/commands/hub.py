"""Handler of ``mblip push`` (parser: ``mblip.hub``)."""

from __future__ import annotations

import argparse

from pipeline.hub import plan_remote, push


def cmd_push(args: argparse.Namespace) -> int:
    if args.dry_run:
        plan = plan_remote(args.folder, args.repo_id, revision=args.revision, token=args.token)
    else:
        plan = push(args.folder, args.repo_id, private=args.private, revision=args.revision, token=args.token)
    print(f"{args.repo_id}: {len(plan.upload)} files {'to upload' if args.dry_run else 'uploaded'}, "
          f"{len(plan.delete)} {'to remove' if args.dry_run else 'removed'}, {len(plan.unchanged)} unchanged")
    for rel in plan.upload:
        print(f"  + {rel}")
    for rel in plan.delete:
        print(f"  - {rel}")
    return 0

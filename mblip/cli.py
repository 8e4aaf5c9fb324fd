"""``mblip``: the command-line entry point. Each command group (``mblip.data``, ``mt``, ``model``,
``bench``, ``eval``) adds its own subcommands' parsers; a subcommand names its handler as ``"GROUP:FUNCTION"``
in ``mblip.commands.GROUP``, which is imported only when that command runs (``HANDLER_MODULES``), so
``mblip --help`` starts without loading torch or Prefect and a missing optional dependency names what to
install."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys

from mblip import bench, browse, data, hub, model, mt
from mblip import eval as evaluation

COMMAND_GROUPS = (data, mt, model, hub, bench, evaluation, browse)
# group -> the module holding its handlers (imported when one of its commands runs)
HANDLER_MODULES = {group: f"mblip.commands.{group}"
                   for group in ("data", "fetch_images", "mt", "model", "hub", "bench", "eval", "browse")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mblip", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_parsers(sub)
    return parser


def handler_of(args: argparse.Namespace):
    """The function that runs the parsed command (``args.handler`` is ``"GROUP:FUNCTION"``)."""
    group, name = args.handler.split(":")
    return getattr(importlib.import_module(HANDLER_MODULES[group]), name)


def main(argv: list[str] | None = None) -> int:
    # Embedded Prefect starts a local server subprocess; give it time on small, busy machines.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise
    try:
        return handler_of(args)(args)
    except (ValueError, OSError) as e:  # bad config or data; a path that cannot be read or written
        if args.debug:
            raise
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 2


def describe_error(error: BaseException) -> str:
    """For an OS error one line, the path and the cause ("...: Permission denied"); else the message."""
    if isinstance(error, OSError) and error.strerror:
        paths = [p for p in (error.filename, error.filename2) if p]
        cause = error.strerror
        if error.errno == errno.ENOSPC and "disk full" not in cause:
            cause = f"{cause} (the disk is full)"
        return f"{' -> '.join(map(str, paths))}: {cause}" if paths else cause
    return str(error) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())

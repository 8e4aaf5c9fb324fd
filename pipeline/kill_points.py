"""A test hook: a run that kills itself at a named point, so tests kill a real run exactly there.

``MBLIP_KILL_AT=POINT[:SIGNAL]`` (``SIGNAL``: ``KILL``, the default, or ``TERM``) makes the process send
itself that signal the first time it reaches ``POINT``:

- ``ingest``: a source's first English chunk is written, its ingest is not finished;
- ``chunks``: one chunk is processed, the others are not;
- ``shards``: the first shard group is complete in staging, the others are not written;
- ``publish``: the first file has moved from staging into the output, the manifest is gone.

No polling, no sleeps: the kill lands at the same place however busy the machine is. SIGKILL ends the
process there. SIGTERM runs what a real one runs (``flows.lifecycle``: ``SystemExit`` in the main thread,
the normal exit path); a stage running on another thread stops at the point too, as it does when it runs
on the main thread. Unset (always, outside tests), the hook does nothing.
"""

from __future__ import annotations

import os
import signal
import threading

KILL_AT_ENV = "MBLIP_KILL_AT"
KILL_POINTS = ("ingest", "chunks", "shards", "publish")


def kill_point(name: str) -> None:
    """Send this process the signal ``MBLIP_KILL_AT`` names when it names ``name`` (see the module)."""
    spec = os.environ.get(KILL_AT_ENV)
    if not spec:
        return
    point, _, sig = spec.partition(":")
    if point not in KILL_POINTS:
        raise ValueError(f"{KILL_AT_ENV}={spec!r}: the point must be one of {', '.join(KILL_POINTS)}")
    if point != name:
        return
    signum = signal.Signals[f"SIG{sig or 'KILL'}"]
    os.kill(os.getpid(), signum)
    # Still alive: a handler turned the signal into SystemExit in the main thread. A stage on a worker
    # thread stops here as well instead of finishing its work while the process exits.
    if threading.current_thread() is not threading.main_thread():
        raise SystemExit(128 + signum)

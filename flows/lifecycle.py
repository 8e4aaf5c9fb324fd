"""The embedded Prefect server's life: it ends with the run that started it, however the run ends.

Without a ``PREFECT_API_URL``, Prefect starts a local server subprocess on first use and stops it
from an ``atexit`` hook. Neither SIGTERM (what ``timeout``, Slurm preemption and ``docker stop``
send) nor SIGKILL runs ``atexit``, so the server (~230 MB) outlived the run. Here:

- SIGTERM and SIGHUP become ``SystemExit`` in the main thread, so the normal exit path (and Prefect's
  own ``atexit`` stop) runs;
- a small watchdog process waits for the run's process to disappear and then stops the server,
  which also covers SIGKILL and crashes of the interpreter.

A run that talks to a real server (``PREFECT_API_URL`` set) has no server of its own to stop; SIGTERM
and SIGHUP still become ``SystemExit``, so the run ends the same way whichever server it reports to
(``finally`` blocks and ``atexit`` hooks run; without it Prefect re-sends the signal after marking the
flow run crashed, and the default action ends the process on the spot).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

# The watchdog, started before the server: while the run's process lives, note its children that
# are Prefect servers; once it is gone (the watchdog is reparented, even while the run is a zombie),
# end those that still run: TERM, then KILL after a grace period. Linux (/proc); elsewhere it only waits.
_WATCHDOG = r"""
import os, signal, sys, time
parent, marker = int(sys.argv[1]), sys.argv[2].encode()
def command(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return b""
def servers():
    found = set()
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if name.isdigit():
            try:
                stat = open(f"/proc/{name}/stat", "rb").read()
            except OSError:
                continue
            if (int(stat.rsplit(b")", 1)[1].split()[1]) == parent and int(name) != os.getpid()
                    and marker in command(name)):  # not itself: the marker is in its own argv
                found.add(int(name))
    return found
seen = set()
while os.getppid() == parent:
    seen |= servers()
    time.sleep(0.2)
for sig, grace_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
    seen = {pid for pid in seen if marker in command(pid)}
    for pid in seen:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while any(marker in command(pid) for pid in seen) and time.monotonic() < deadline:
        time.sleep(0.2)
"""
SERVER_MARKER = "prefect.server.api.server:create_app"  # in the embedded server's command line

_watchdog: subprocess.Popen | None = None


def exit_on_termination_signals() -> None:
    """SIGTERM/SIGHUP -> ``SystemExit(128 + signum)`` in the main thread (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise)


def start_guarded_embedded_server() -> int | None:
    """Start Prefect's embedded server now (if this process would use one), guarded as above; SIGTERM and
    SIGHUP become ``SystemExit`` in either case.

    Returns the server's pid, or None when a ``PREFECT_API_URL`` is configured (a real server, not
    ours to stop). Prefect reuses the started instance for the run (it is a per-port singleton).
    """
    global _watchdog
    from prefect.settings import get_current_settings

    exit_on_termination_signals()
    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return None
    if _watchdog is None or _watchdog.poll() is not None:
        _watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), SERVER_MARKER],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # a signal to the run's process group must not end the watchdog first
        )
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=settings.server.ephemeral.startup_timeout_seconds)
    return server.server_process.pid if server.server_process else None

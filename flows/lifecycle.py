"""The embedded Prefect server's life: it ends with the run that started it, however the run ends.

Without a ``PREFECT_API_URL``, Prefect starts a local server subprocess on first use and stops it
from an ``atexit`` hook. Neither SIGTERM (what ``timeout``, Slurm preemption and ``docker stop``
send) nor SIGKILL runs ``atexit``, so the server (~230 MB) outlived the run. Here:

- SIGTERM and SIGHUP become ``SystemExit`` in the main thread, so the normal exit path (and Prefect's
  own ``atexit`` stop) runs;
- a small watchdog process waits for the run's process to disappear and then stops the server,
  which also covers SIGKILL and crashes of the interpreter;
- the server is started with SIGINT and SIGTERM blocked (a child inherits the signal mask), so a
  signal sent to the whole process group (Ctrl-C in a terminal, ``kill -TERM -PGID``, a batch system
  ending a job's processes) reaches only the run. Before, the server died with the run, which then
  spent a minute retrying to report its end to it and printed ~120 lines of connection errors.
  Since it cannot receive SIGTERM, the server is stopped with SIGKILL when the run exits; its SQLite
  database is transactional, and the run has reported its final state by then.

A run that talks to a real server (``PREFECT_API_URL`` set) has no server of its own to stop; SIGTERM
and SIGHUP still become ``SystemExit``, so the run ends the same way whichever server it reports to
(``finally`` blocks and ``atexit`` hooks run; without it Prefect re-sends the signal after marking the
flow run crashed, and the default action ends the process on the spot).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading

# The watchdog, started before the server: while the run's process lives, note its children that
# are Prefect servers; once it is gone (the watchdog is reparented, even while the run is a zombie),
# kill those that still run. Linux (/proc); elsewhere it only waits.
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
for pid in seen:  # SIGTERM is blocked in the server (see below)
    if marker in command(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
"""
SERVER_MARKER = "prefect.server.api.server:create_app"  # in the embedded server's command line
GROUP_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # what a terminal or a batch system sends a whole process group

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
    if not server.running:
        spawn = server._run_uvicorn_command
        server._run_uvicorn_command = lambda: spawn_without_group_signals(spawn)
        server.start(timeout=settings.server.ephemeral.startup_timeout_seconds)
        atexit.register(kill_server, server)  # runs before Prefect's own stop (atexit is last-in, first-out)
    return server.server_process.pid if server.server_process else None


def spawn_without_group_signals(spawn):
    """``spawn()`` a child process with SIGINT and SIGTERM blocked in it (the mask is inherited)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_SIGNALS)
    try:
        return spawn()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def kill_server(server) -> None:
    """Stop the embedded server at exit: SIGKILL, as it does not receive SIGTERM (Prefect's own stop
    would wait 5 s for it first)."""
    process = server.server_process
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()

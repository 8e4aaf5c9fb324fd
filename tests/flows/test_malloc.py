"""The malloc arena cap that keeps a flow's memory flat over many chunks (see flows/malloc.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Eight threads, each allocating while the others still live; then glibc's own report of its heaps.
COUNT_HEAPS = """
import ctypes, sys, tempfile, threading
if sys.argv[1] == "flows":
    import flows  # noqa: F401
hold, ready, stop = [], threading.Barrier(9), threading.Event()
def work():
    hold.append([bytes(2000) for _ in range(100)])
    ready.wait(); stop.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
ready.wait()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w"); libc.malloc_info(0, fp); libc.fclose(fp)
stop.set()
for t in threads: t.join()
print(open(path).read().count("<heap nr="))
"""


def _heaps(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", COUNT_HEAPS, mode], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_importing_flows_caps_the_arenas_that_new_threads_get():
    assert _heaps("plain") > 2  # without the cap, new threads get heaps of their own
    assert _heaps("flows") <= 2


def test_a_malloc_arena_max_from_the_environment_is_left_alone(monkeypatch):
    from flows.malloc import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False

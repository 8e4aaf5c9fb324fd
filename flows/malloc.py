"""Cap glibc's malloc arenas in a flow process.

glibc gives each new thread its own heap ("arena"), up to 8 per core, and an arena keeps much of
what its thread freed. The chunk tasks run on a thread pool, so a long run holds a chunk's worth of
fragmented heap in every arena its task threads touched. Measured with ``mblip bench memory
--backtranslation`` (two chunk tasks at a time): 200k examples peaked at 756 MiB against 568 MiB for
50k. With two arenas the 200k run stayed flat at about 460 MiB while its 40 chunks ran, and one
thread processing 24 of the chunks directly stayed flat at about 343 MiB without any cap.

``MALLOC_ARENA_MAX`` in the environment does the same when set before the process starts and is
left alone. Without it, ``limit_malloc_arenas`` runs when ``flows`` is imported. That must happen
before the process has more than 8 arenas: at that point glibc fixes its limit for good. The CLI and
the flow modules import ``flows`` before any worker thread starts; a Dask worker imports it with its
first task, while it still has few threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h
DEFAULT_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """At most ``arenas`` malloc arenas from now on; False where it does not apply.

    Not applied when ``MALLOC_ARENA_MAX`` is set (glibc already read it), off Linux, or on a C
    library without ``mallopt`` (musl).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt(M_ARENA_MAX, arenas) == 1

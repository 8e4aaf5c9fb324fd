"""Peak memory of a whole ``generate`` run at two sizes (a command, not a test).

``mblip bench memory --sizes 50000,200000``: the same demo recipe and tiny random model at each size,
each run in a fresh process; prints the peak resident set size (the run's own process, not Prefect's
embedded server) and how much it grew. Streaming stages keep it nearly flat: chunks are bounded
(``run.chunk_rows``), at most ``run.concurrency`` are in memory, and the shard writer works per group.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from flows.bench.flow import REPO, prepare, write_config
from flows.generate import generate

CHILD_MARK = "PEAK_RSS_KB"


def measure(config: Path) -> int:
    """Peak RSS (KiB) of one flow run in a new process."""
    proc = subprocess.run([sys.executable, "-m", "flows.bench.memory", "--child", str(config)], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = next(line for line in proc.stdout.splitlines() if line.startswith(CHILD_MARK))
    return int(line.split()[1])


def main(sizes: tuple[int, ...] = (50_000, 200_000), work: Path | None = None, backtranslate: bool = False) -> int:
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # busy machines
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix="mblip-bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"working folder: {work}")
    peaks = {}
    for n in sizes:
        data, model = prepare(work, n, backtranslate)
        out = work / f"out-{n}"
        shutil.rmtree(out, ignore_errors=True)
        peaks[n] = measure(write_config(work / f"memory-{n}.yaml", data, model, out, backtranslate, concurrency=2))
        print(f"  {n:>8} examples: peak RSS {peaks[n] / 1024:.0f} MiB")
    small, large = peaks[min(sizes)], peaks[max(sizes)]
    print(f"peak RSS {max(sizes)} vs {min(sizes)} examples: {100 * (large / small - 1):+.1f}%")
    return 0


def peak_rss_kib() -> int:
    """This process's own peak resident set size (KiB).

    Linux: ``VmHWM``, the high-water mark of the current address space. ``ru_maxrss`` is not used
    there: it also counts the forked copy of the parent before ``exec``, so a child of a benchmark
    that had just generated 200k examples of demo data reported the parent's size, not its own.
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(config: str) -> None:
    generate(config)
    print(CHILD_MARK, peak_rss_kib(), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        sys.exit(main())

"""Retry classification, task runner choice and bounded submission."""

import errno
import threading
import time

import pytest
from prefect import flow, task
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runtime import is_transient_error, make_task_runner
from pipeline.build import run_bounded


@pytest.mark.parametrize("error, transient", [
    (RuntimeError("CUDA failed with error out of memory"), True),
    (MemoryError("out of memory"), True),
    (OSError(errno.EIO, "Input/output error"), True),
    (OSError(errno.ESTALE, "Stale file handle"), True),
    (TimeoutError("read timed out"), True),
    (ConnectionResetError("peer reset"), True),
    (FileNotFoundError(errno.ENOENT, "no such file"), False),  # a wrong path stays wrong
    (PermissionError(errno.EACCES, "denied"), False),
    (OSError(errno.ENOSPC, "No space left on device"), False),
    (ValueError("caption is not a string"), False),  # bad data: never retried
    (KeyError("image_id"), False),
    (RuntimeError("unsupported model"), False),
])
def test_only_transient_errors_are_retried(error, transient):
    assert is_transient_error(error) is transient


def test_task_runner_choice():
    assert isinstance(make_task_runner(), ThreadPoolTaskRunner)
    from prefect_dask import DaskTaskRunner

    remote = make_task_runner(dask_address="tcp://127.0.0.1:8786")
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://127.0.0.1:8786"
    local = make_task_runner(workers=3)
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs["n_workers"] == 3
    with pytest.raises(ValueError, match="not both"):
        make_task_runner(dask_address="tcp://x:1", workers=2)


_lock = threading.Lock()
_state = {"now": 0, "peak": 0}


@task
def _hold(i: int) -> int:
    with _lock:
        _state["now"] += 1
        _state["peak"] = max(_state["peak"], _state["now"])
    time.sleep(0.2)
    with _lock:
        _state["now"] -= 1
    return i


@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def _bounded(n: int, limit: int) -> list[int]:
    done: list[int] = []
    run_bounded((lambda i=i: _hold.submit(i) for i in range(n)), limit, done.append, as_completed)
    return sorted(done)


def test_run_bounded_keeps_at_most_limit_tasks_in_flight(prefect_api):
    _state.update(now=0, peak=0)
    assert _bounded(7, 2) == list(range(7))
    assert _state["peak"] == 2
    with pytest.raises(ValueError, match="concurrency"):
        run_bounded(iter(()), 0, print, as_completed)

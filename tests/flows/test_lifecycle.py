"""The embedded Prefect server ends with the run that started it: SIGTERM (``timeout``, Slurm, ``docker
stop``) and SIGKILL of a real ``generate`` process leave no server process behind, and a SIGTERM to the
whole process group ends the run at once and quietly. Telemetry is off."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append((int(entry.name), cmdline))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_orphaned_embedded_server_after_signal(sig, demo_config, tmp_path):
    config = demo_config(chunk_rows=5)
    proc = subprocess.Popen([sys.executable, "-m", "flows.generate", str(config), str(tmp_path / "out")],
                            cwd=REPO, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers: list[int] = []
    try:
        deadline = time.monotonic() + 200
        while not servers:
            assert proc.poll() is None, f"generate exited with {proc.returncode} before its server started"
            assert time.monotonic() < deadline, "no embedded server process appeared"
            servers = _servers(proc.pid)
            time.sleep(0.2)
        time.sleep(1.0)  # let the run get going
        proc.send_signal(sig)
        proc.wait(timeout=60)
        _assert_gone(servers[0], f"embedded Prefect server {servers[0]} outlived generate ({sig.name})")
    finally:
        _end(proc, servers)


def test_sigterm_to_the_process_group_ends_the_run_quietly(demo_config, tmp_path):
    """A batch system or ``kill -TERM -PGID`` signals every process of the group, the server too: the run
    still reports its end and exits at once, with no page of connection errors from a dead server."""
    config = demo_config(chunk_rows=5)
    command = [sys.executable, "-m", "mblip.cli", "generate", str(config), "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(command, cwd=REPO, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lines: list[str] = []
    running = threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if "Beginning flow run" in line:
                running.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    servers: list[int] = []
    try:
        assert running.wait(200), "".join(lines[-20:])
        servers = _servers(proc.pid)
        before = len(lines)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=45)  # it hung for minutes retrying a server that died with it
        reader.join(timeout=10)
        after = "".join(lines[before:])
        assert proc.returncode == 128 + signal.SIGTERM, after
        assert len(lines) - before <= 8 and "Traceback" not in after and "Unable to connect" not in after, after
        _assert_gone(servers[0], "the embedded server outlived the run")
    finally:
        _end(proc, servers)


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO),
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    return env


def _servers(pid: int) -> list[int]:
    return [child for child, cmd in _children(pid) if "uvicorn" in cmd and "prefect.server" in cmd]


def _assert_gone(pid: int, message: str) -> None:
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), message


def _end(proc: subprocess.Popen, servers: list[int]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in servers:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_telemetry_is_off_by_default():
    from prefect._internal.analytics import ci_detection

    ci_vars = {name for name in vars(ci_detection).get("CI_ENV_VARS", ())} | {"CI"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "DO_NOT_TRACK"
           and k not in ci_vars}
    env["PYTHONPATH"] = str(REPO)
    script = ("import flows\n"
              "from prefect.settings import get_current_settings\n"
              "from prefect._internal.analytics import is_telemetry_enabled\n"
              "print(get_current_settings().server.analytics_enabled, is_telemetry_enabled())\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
    # and a user's choice wins
    env.update(DO_NOT_TRACK="0", PREFECT_SERVER_ANALYTICS_ENABLED="true")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "True"]

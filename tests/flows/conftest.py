"""A real Prefect server on loopback for the flow tests (one per session), and demo configs."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 240  # a fresh database is migrated on first start; slow on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path, api_url: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
    })
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """``prefect server start`` on 127.0.0.1:<free port> with its own PREFECT_HOME; always stopped."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env(home), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                tail = (home / "server.log").read_text()[-3000:]
                raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prefect server not healthy after {SERVER_START_TIMEOUT_S} s")
            time.sleep(0.5)
        yield {"url": url, "home": home}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture()
def prefect_api(prefect_server, tmp_path):
    """Point this process at the session's server for one test (and only that test)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    updates = {PREFECT_API_URL: prefect_server["url"], PREFECT_HOME: str(tmp_path / "client-home")}
    with temporary_settings(updates=updates):
        yield prefect_server["url"]


def write_demo_config(folder: Path, name: str = "demo.yaml", chunk_rows: int = 20, min_bt_chrf: float = 10.0, *,
                      demo_root: Path, model: Path, only_bt_rule: dict, **sections) -> Path:
    """A demo config over a copy of the demo data in ``folder``, written next to it (its output: ``dataset``)."""
    from pipeline.demo import DEMO_CONFIG

    data = folder / "demo-data"
    if not data.exists():
        shutil.copytree(demo_root, data)
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["translation"]["model"] = str(model)
    # The random model never ends a sentence, so every output runs to the decoding cap: a cap of
    # 10 tokens keeps these orchestration tests fast.
    config["translation"]["max_length_ratio"] = 0.01
    config["run"]["chunk_rows"] = chunk_rows
    config["filter"].update(only_bt_rule, min_bt_chrf=min_bt_chrf)
    config["filter"]["reverse"] = "decode"  # these tests turn the chrF++ threshold; a section may override
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def demo_config_in(demo_root, tiny_model_dir, only_bt_rule):
    """``make(folder, **changes)``: ``write_demo_config`` with the tiny model, for fixtures of any scope."""
    return functools.partial(write_demo_config, demo_root=demo_root, model=tiny_model_dir, only_bt_rule=only_bt_rule)


@pytest.fixture()
def demo_config(tmp_path, demo_config_in):
    """``make(**changes)``: a demo config over a copy of the demo data, written next to it."""
    return functools.partial(demo_config_in, tmp_path)

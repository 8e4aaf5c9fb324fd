"""End to end on a real Prefect server on loopback: serve the ``nightly`` deployment of prefect.yaml,
trigger a run through the API, see it complete with its artifacts and the pipeline's log records."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.serve import load_deployment_specs

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 300


def test_prefect_yaml_deploys_generate_regenerate_and_train_by_entrypoint():
    specs = {s["name"]: s for s in load_deployment_specs()}
    assert specs["nightly"]["entrypoint"] == "flows/generate.py:generate"
    assert specs["nightly"]["schedules"][0]["cron"]
    assert specs["on-demand"]["entrypoint"] == "flows/regenerate.py:regenerate"
    assert specs["launch"]["entrypoint"] == "flows/train.py:train_flow"
    from flows.generate import generate
    from flows.regenerate import regenerate
    from flows.train import train_flow

    # Parameters in prefect.yaml must be parameters of the flows (the server enforces the schema).
    assert set(specs["nightly"]["parameters"]) <= set(generate.parameters.properties)
    assert set(specs["on-demand"]["parameters"]) <= set(regenerate.parameters.properties)
    assert set(specs["launch"]["parameters"]) <= set(train_flow.parameters.properties)
    for spec in specs.values():  # relative paths in parameters resolve against the repository root
        for value in spec["parameters"].values():
            if isinstance(value, str) and value.startswith("configs/"):
                assert (REPO / value).is_file(), value


def _wait_for_deployment(client, name: str, proc: subprocess.Popen, timeout_s: float = 180):
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            if proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}")
            if time.monotonic() > deadline:
                pytest.fail(f"deployment {name} not registered after {timeout_s} s")
            time.sleep(1)


def test_served_deployment_runs_through_the_api(tmp_path, demo_config, prefect_server, prefect_api):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment

    config = demo_config(chunk_rows=40)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=prefect_server["url"], PREFECT_HOME=str(tmp_path / "serve-home"),
               PREFECT_RUNNER_POLL_FREQUENCY="1", PYTHONPATH=str(REPO))
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "flows.serve", "nightly"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with get_client(sync_client=True) as client:
            deployment = _wait_for_deployment(client, "generate/nightly", proc)
            assert deployment.schedules and deployment.schedules[0].schedule.cron == "0 2 * * *"

            run = run_deployment("generate/nightly", parameters={"config_path": str(config)},
                                 timeout=RUN_TIMEOUT_S, poll_interval=1)
            assert run.state.is_completed(), f"{run.state}\n{(tmp_path / 'serve.log').read_text()[-3000:]}"

            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
            keys = {a.key for a in artifacts}
            assert {"language-stats", "dataset-card", "chunk-progress"} <= keys
            progress = [a for a in artifacts if a.key == "chunk-progress"]
            assert progress[0].data == 100.0

            deadline = time.monotonic() + 30  # logs arrive in batches
            while True:
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
                if any(entry.name.startswith("pipeline.") for entry in logs) or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert any(entry.name.startswith("pipeline.") for entry in logs), sorted({e.name for e in logs})
        assert (tmp_path / "dataset" / "manifest.json").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()

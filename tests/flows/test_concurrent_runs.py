"""Two real ``mblip generate`` processes into one output folder at once (different seeds, as in a
mistaken resubmission): one runs, the other is refused naming the holder, and the output is whole:
``mblip verify`` passes and every example id appears exactly once."""

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import yaml

from pipeline.verify import verify_output

REPO = Path(__file__).resolve().parents[2]


def test_two_generates_into_one_folder(demo_config, tmp_path):
    out = tmp_path / "out"
    configs = [demo_config(name=f"seed{s}.yaml", chunk_rows=200, assignment={"mode": "proportional", "seed": s})
               for s in (0, 1)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(REPO), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240")
    procs = [subprocess.Popen([sys.executable, "-m", "mblip.cli", "generate", str(c), "--out", str(out)],
                              cwd=tmp_path, env={**env, "PREFECT_HOME": str(tmp_path / f"home{i}")},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, c in enumerate(configs)]
    results = [(p.wait(timeout=900), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], [err[-2000:] for _, err in results]
    refused = next(err for rc, err in results if rc == 2)
    assert "another run is writing this output (pid " in refused and "Traceback" not in refused

    report = verify_output(out)
    assert report.ok, report.problems
    files = sorted(out.glob("data/*/*.parquet")) + sorted(out.glob("rejects/*/*.parquet"))
    ids = pl.concat([pl.read_parquet(f, columns=["example_id"]) for f in files])["example_id"]
    assert ids.n_unique() == ids.len()
    winner = configs[[rc for rc, _ in results].index(0)]
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["assignment"]["seed"] == yaml.safe_load(winner.read_text())["assignment"]["seed"]

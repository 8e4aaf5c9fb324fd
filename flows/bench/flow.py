"""Orchestration overhead and resume cost of the ``generate`` flow (a command, not a test).

``mblip bench flow``: the same demo data (``--examples``, 8 per image) and the same tiny random model,
once through the stages called directly in a loop (ingest, chunk by chunk, shards) and once through the
Prefect flow, one chunk at a time on both sides; prints both wall times and their ratio. With
``--repeats N`` each side runs N times, alternating which goes first, and the median ratio is reported.
Prefect's embedded server is started before the clock runs (a one-off per process, reported separately).

``mblip bench flow --resume``: an uninterrupted flow run, then a run killed with SIGKILL when half the
chunks are done and its rerun; prints the work redone (chunks and seconds) as a share of the total.
Run it with ``PREFECT_API_URL`` pointing at a running server, or each of the three processes also
pays for starting Prefect's embedded server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from flows.generate import generate
from pipeline.build import build_dataset
from pipeline.config import load_config
from pipeline.demo import DEMO_CONFIG
from pipeline.demo.data import CAPTION_TEMPLATES, generate_demo_data
from pipeline.nllb.engine import load_translator
from pipeline.nllb.shapes import build_tiny_random_model

REPO = Path(__file__).resolve().parents[2]
ROWS_PER_IMAGE = 8  # 5 captions + 3 questions
CHUNK_ROWS = 5_000
RESUME_CHUNK_ROWS = 2_500
WARM_UP_EXAMPLES = 800


def prepare(work: Path, examples: int, backtranslate: bool) -> tuple[Path, Path]:
    """Demo data for ``examples`` rows and a tiny random model under ``work``: (data root, model dir)."""
    images = max(1, examples // ROWS_PER_IMAGE)
    data = work / f"demo-data-{images}"
    if not (data / "vqa").exists():
        t0 = time.perf_counter()
        generate_demo_data(data, n_images=images, seed=0)
        print(f"demo data: {images} images, {images * ROWS_PER_IMAGE} examples ({time.perf_counter() - t0:.0f} s)")
    model = work / "tiny-model"
    if not (model / "ct2" / "model.bin").exists() and not (model / "model.bin").exists():
        texts = [t.format(c="red", s="circle", size="small", where="top left") for t in CAPTION_TEMPLATES]
        texts += ["What color is the square?", "What shape is shown in the image?", "Is the triangle blue?"]
        model = build_tiny_random_model(model, texts * 20, vocab_size=120)
    else:
        model = model / "ct2" if (model / "ct2" / "model.bin").exists() else model
    return data, Path(model)


def write_config(path: Path, data: Path, model: Path, out: Path, backtranslate: bool, concurrency: int = 1,
                 chunk_rows: int = CHUNK_ROWS) -> Path:
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["sources"][0]["annotations"] = str(data / "annotations" / "captions_train2014.json")
    config["sources"][0]["images"] = str(data / "images" / "train2014")
    config["sources"][1]["questions"] = str(data / "vqa" / "v2_OpenEnded_mscoco_train2014_questions.json")
    config["sources"][1]["annotations"] = str(data / "vqa" / "v2_mscoco_train2014_annotations.json")
    config["sources"][1]["images"] = str(data / "images")
    config["translation"]["model"] = str(model)
    config["translation"]["cache_dir"] = str(out / "_work" / "translation-cache")
    config["filter"]["backtranslate"] = backtranslate
    config["run"]["chunk_rows"] = chunk_rows
    config["run"]["concurrency"] = concurrency
    config["output"]["dir"] = str(out)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_direct(config_path: Path) -> dict:
    """The same ``build_dataset`` the flow runs, with every stage called in this process (no Prefect)."""
    return build_dataset(load_config(config_path))


def _warm_up_prefect() -> float:
    from prefect import flow

    @flow(name="warm-up")
    def warm_up() -> None:
        return None

    t0 = time.perf_counter()
    warm_up()
    return time.perf_counter() - t0


def bench_overhead(work: Path, examples: int, backtranslate: bool, repeats: int = 1) -> dict:
    """Wall time of the direct stages and of the flow on the same data, ``repeats`` times each.

    The sides alternate which one goes first (direct-flow, flow-direct, ...) so that a machine that
    gets busier or quieter during the run does not favour one side; each run writes a fresh folder.
    """
    data, model = prepare(work, examples, backtranslate)
    startup = _warm_up_prefect()

    # Both sides share this process's engine (cached per process): load it before either clock runs,
    # and run the stages once on a small set so lazy imports (plots, filters) are not charged to one side.
    warm_cfg = write_config(work / "warm-up.yaml", prepare(work, WARM_UP_EXAMPLES, backtranslate)[0], model,
                            work / "out-warm-up", backtranslate)
    load_translator(str(model), load_config(warm_cfg).translation.engine_settings())
    shutil.rmtree(work / "out-warm-up", ignore_errors=True)
    run_direct(warm_cfg)

    def timed(side: str, i: int) -> tuple[float, dict]:
        out = work / f"out-{side}-{i}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = write_config(work / f"{side}-{i}.yaml", data, model, out, backtranslate)
        t0 = time.perf_counter()
        manifest = run_direct(cfg) if side == "direct" else generate(str(cfg))
        return time.perf_counter() - t0, manifest

    times: dict[str, list[float]] = {"direct": [], "flow": []}
    totals = set()
    for i in range(repeats):
        for side in ("direct", "flow") if i % 2 == 0 else ("flow", "direct"):
            seconds, manifest = timed(side, i)
            times[side].append(seconds)
            totals.add(json.dumps(manifest["totals"], sort_keys=True))
            if side == "flow":
                chunks = manifest["run"]["chunks"]["process"]
    if len(totals) != 1:
        raise RuntimeError(f"the runs disagree on their totals: {sorted(totals)}")
    ratios = [f / d for d, f in zip(times["direct"], times["flow"])]
    return {"examples": json.loads(totals.pop())["records"], "chunks": chunks, "direct_s": times["direct"],
            "flow_s": times["flow"], "ratios": ratios, "ratio": statistics.median(ratios), "prefect_startup_s": startup}


def _run_flow_subprocess(config: Path, kill_at_chunks: int | None = None) -> tuple[float, int]:
    """Run ``python -m flows.generate`` (optionally SIGKILLed once that many chunks are done): (seconds, rc)."""
    out = Path(yaml.safe_load(config.read_text())["output"]["dir"])
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flows.generate", str(config)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_at_chunks is not None:
        processed = out / "_work" / "processed"
        while proc.poll() is None:
            done = sum(1 for p in processed.rglob("chunk-*.parquet")) if processed.exists() else 0
            if done >= kill_at_chunks:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    rc = proc.wait()
    return time.perf_counter() - t0, rc


def bench_resume(work: Path, examples: int, backtranslate: bool) -> dict:
    data, model = prepare(work, examples, backtranslate)
    full_out, killed_out = work / "out-full", work / "out-killed"
    for d in (full_out, killed_out):
        shutil.rmtree(d, ignore_errors=True)
    # Smaller chunks than the overhead run: a kill loses at most the chunk in flight (1/20 here).
    full_cfg = write_config(work / "full.yaml", data, model, full_out, backtranslate, chunk_rows=RESUME_CHUNK_ROWS)
    killed_cfg = write_config(work / "killed.yaml", data, model, killed_out, backtranslate,
                              chunk_rows=RESUME_CHUNK_ROWS)

    full_s, rc = _run_flow_subprocess(full_cfg)
    if rc != 0:
        raise RuntimeError(f"uninterrupted run failed with {rc}")
    total = json.loads((full_out / "manifest.json").read_text())["run"]["chunks"]["process"]
    killed_s, rc = _run_flow_subprocess(killed_cfg, kill_at_chunks=total // 2)
    done_at_kill = sum(1 for _ in (killed_out / "_work" / "processed").rglob("chunk-*.parquet"))
    rerun_s, rc2 = _run_flow_subprocess(killed_cfg)
    if rc2 != 0:
        raise RuntimeError(f"rerun failed with {rc2}")
    rerun = json.loads((killed_out / "manifest.json").read_text())
    # A rerun with nothing left to do: what any restart costs (process start-up, flow run, planning,
    # publishing), as opposed to chunk work done twice.
    restart_s, _ = _run_flow_subprocess(killed_cfg)
    same = rerun["files"] == json.loads((full_out / "manifest.json").read_text())["files"]
    redone_chunks = done_at_kill + rerun["run"]["chunks"]["process"] - total
    return {"chunks": total, "killed_rc": rc, "done_at_kill": done_at_kill,
            "rerun_processed": rerun["run"]["chunks"]["process"], "redone_chunks": redone_chunks,
            "redone_chunk_share": redone_chunks / total, "full_s": full_s, "killed_s": killed_s, "rerun_s": rerun_s,
            "redone_time_share": (killed_s + rerun_s - full_s) / full_s, "restart_s": restart_s,
            "redone_work_share": max(0.0, killed_s + rerun_s - full_s - restart_s) / full_s, "identical_output": same}


def main(examples: int = 50_000, work: Path | None = None, backtranslate: bool = False, resume: bool = False,
         repeats: int = 1) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # busy machines
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix="mblip-bench-flow-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"working folder: {work}")
    if resume:
        r = bench_resume(work, examples, backtranslate)
        print(f"resume: {r['chunks']} chunks; killed at {r['done_at_kill']} done; rerun processed "
              f"{r['rerun_processed']}; redone {r['redone_chunks']} chunks ({100 * r['redone_chunk_share']:.1f}%)")
        print(f"  wall: uninterrupted {r['full_s']:.1f} s, killed run {r['killed_s']:.1f} s, "
              f"rerun {r['rerun_s']:.1f} s "
              f"-> extra time {100 * r['redone_time_share']:.1f}% of the uninterrupted run")
        print(f"  a restart with nothing to do takes {r['restart_s']:.1f} s; without it, work redone = "
              f"{100 * r['redone_work_share']:.1f}% of the run; identical output: {r['identical_output']}")
        return 0
    r = bench_overhead(work, examples, backtranslate, repeats)
    print(f"overhead: {r['examples']} examples, {r['chunks']} chunks, back-translation "
          f"{'on' if backtranslate else 'off'}, {len(r['ratios'])} run(s) per side, alternating which goes first")
    for i, (d, f, ratio) in enumerate(zip(r["direct_s"], r["flow_s"], r["ratios"]), 1):
        print(f"  run {i}: direct stages {d:.1f} s   flow {f:.1f} s   ratio {ratio:.3f}")
    print(f"  median ratio {r['ratio']:.3f} (overhead {100 * (r['ratio'] - 1):+.1f}%)   "
          f"[embedded Prefect server start-up {r['prefect_startup_s']:.1f} s, not counted]")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))

"""Shared fixtures: tiny real models and demo data built locally (no downloads)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Tests never reach a hub; make any accidental attempt fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Prefect's embedded server starts in a subprocess; on a busy 2-core machine it needs more than the
# default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# One embedded Prefect database for the whole test session, never the user's ~/.prefect. (Prefect
# keeps its embedded server for the process, so a per-test PREFECT_HOME would not take effect.)
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="mblip-tests-prefect-")
os.environ.pop("PREFECT_API_URL", None)

REPO = Path(__file__).resolve().parents[1]
# pytest-timeout: every test gets ``timeout`` from pyproject.toml (a hang fails its test, not the whole CI
# job); tests marked slow (benchmark-sized models, minutes each) get this one unless they name their own.
SLOW_TIMEOUT_S = 1800


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
TINY_CONFIG = REPO / "model" / "demo" / "train_tiny.yaml"
BLIP2_TEXT_WIDTH = 64  # tiny BLIP-2's (English) T5 width: mT5 matches it, BLOOM does not
BLOOM_WIDTH = 48

TINY_TEXTS = [
    "A red circle on a plain background.",
    "There is a blue square in the picture.",
    "A simple drawing of a green triangle.",
    "What color is the square?",
    "What shape is shown in the image?",
    "Is the triangle blue?",
    "Two dogs run across 3 fields.",
    "yes", "no", "red", "blue", "circle",
] * 10


@pytest.fixture(scope="session")
def only_bt_rule() -> dict:
    """Filter settings that leave only the back-translation rule on (None = off): a random-weight
    model's output fails every cheap check, so mechanics tests that want rows kept use these."""
    return {
        **dict.fromkeys(("min_script_share", "max_copy_overlap", "max_repeat_run", "max_repeat_ngram",
                         "max_compression", "min_length_ratio", "max_length_ratio", "langid_max_rank",
                         "min_fwd_logprob", "min_fwd_margin", "max_en_leak", "max_char_repeat",
                         "max_length_ratio_unscored")),
        "reject_inflated_short": False, "require_numbers": False, "check_answers": False,
    }


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A converted (CT2 int8) random-weight NLLB-architecture model: real code path, noise output."""
    from pipeline.nllb.shapes import build_tiny_random_model

    return build_tiny_random_model(tmp_path_factory.mktemp("tiny-nllb"), TINY_TEXTS, vocab_size=120)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from pipeline.demo.data import generate_demo_data

    root = tmp_path_factory.mktemp("demo-data")
    generate_demo_data(root, n_images=12, seed=0)
    return root


def write_processed_chunks(work: Path, n_rows: int = 60, langs=("de", "fr", "iw"), chunks: int = 2, seed: int = 0):
    """Processed chunks as the chunk stage writes them (ROW_SCHEMA, kept and rejected rows with scores),
    without running a translator: for tests of the output stage. Returns (paths, ingest counts)."""
    import random

    import polars as pl

    from pipeline.languages import get_language
    from pipeline.schema import ROW_SCHEMA, conform, make_example_id

    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        source, task = ("coco_captions", "caption") if i % 3 else ("vqav2", "vqa")
        lang = langs[i % len(langs)]
        kept = i % 4 != 0
        rows.append({
            "example_id": make_example_id(source, str(i)), "source": source, "source_record_id": str(i),
            "source_file": f"{source}.json", "task": task, "image_id": str(i // 5),
            "image_path": f"train2014/COCO_train2014_{i // 5:012d}.jpg",
            "text_en": f"A red circle number {i}." if task == "caption" else f"What color is shape {i}?",
            "answer_en": "red" if task == "vqa" else None, "answers_en": ["red"] * 10 if task == "vqa" else None,
            "lang": lang, "lang_nllb": get_language(lang).nllb, "text_tgt": f"[{lang}] text {i}",
            "answer_tgt": f"[{lang}] rot" if task == "vqa" else None, "backtranslation_en": f"A red circle {i}.",
            "score_bt_chrf": rng.uniform(40, 90) if kept else rng.uniform(0, 30),
            "score_length_ratio": rng.uniform(0.7, 1.5),
            "status": "kept" if kept else "rejected", "reject_reason": None if kept else "low_bt_chrf",
        })
    frame = conform(pl.DataFrame(rows), ROW_SCHEMA)
    paths, counts = [], {}
    step = -(-n_rows // chunks)
    for i in range(chunks):
        part = frame.slice(i * step, step)
        for source in ("coco_captions", "vqav2"):
            sub = part.filter(pl.col("source") == source)
            path = work / "processed" / source / f"chunk-{i:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            sub.write_parquet(path)
            paths.append(path)
            c = counts.setdefault(source, {"rows": 0, "quarantined": 0})
            c["rows"] += sub.height
    return paths, counts


@pytest.fixture(scope="session")
def make_processed():
    """``write_processed_chunks`` as a fixture (test modules cannot import conftest)."""
    return write_processed_chunks


@pytest.fixture()
def one_torch_thread():
    """Tiny matmuls run fastest on one thread, and the test machine's cores are shared (the trainer and CLI
    tests' conftests use it for every test)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# The trainer's fixtures (tests/model, tests/mblip, tests/flows): tiny BLIP-2 / mT5 / BLOOM checkpoints and the
# demo scenes as an English training output, all built locally and loaded through the hub-id-or-directory path.

@pytest.fixture(scope="session")
def demo_output(demo_root, tmp_path_factory) -> Path:
    from model.demo.trainer import write_english_demo_output

    return write_english_demo_output(demo_root, tmp_path_factory.mktemp("demo-output"))


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, demo_output) -> dict[str, Path]:
    import polars as pl

    from model.tiny import build_tiny_bloom, build_tiny_blip2, build_tiny_mt5

    root = tmp_path_factory.mktemp("tiny-models")
    rows = pl.read_parquet(demo_output / "data" / "en" / "part-00000.parquet")
    texts = rows["text_en"].to_list() + ["Caption the image in English.", "Answer in English:"]
    return {
        "blip2": build_tiny_blip2(root / "blip2", image_size=32, text_width=BLIP2_TEXT_WIDTH),
        "mt5": build_tiny_mt5(root / "mt5", texts, width=BLIP2_TEXT_WIDTH),
        "bloom": build_tiny_bloom(root / "bloom", texts, width=BLOOM_WIDTH),
    }


@pytest.fixture()
def make_config(tiny_dirs, demo_output, tmp_path):
    """A TrainConfig from model/demo/train_tiny.yaml pointed at the tiny models and the demo output."""
    from model.config import load_config

    def make(llm: str = "mt5", **sections):
        overrides = {
            "model": {"blip2": str(tiny_dirs["blip2"]), "llm": str(tiny_dirs[llm])},
            "data": {"manifest": str(demo_output), "num_workers": 0},
            "train": {"output_dir": str(tmp_path / "run"), "max_steps": 4, "eval_every": 0, "save_every": 0},
        }
        for section, values in sections.items():
            overrides.setdefault(section, {}).update(values)
        return load_config(TINY_CONFIG, overrides)

    return make


# A real S3-protocol server on 127.0.0.1 (moto's standalone server, as s3fs's own tests use), for the
# fsspec URL tests: sources, outputs, verify and the trainer's webdataset shards at s3:// URLs.

class S3Server:
    """The running server: ``fs`` (an s3fs filesystem on it), ``bucket()`` (a fresh bucket) and the
    requests it served, counted by method from its own request log (``requests("PUT")``)."""

    def __init__(self, endpoint: str):
        import logging

        self.endpoint = endpoint
        self.log: list[str] = []
        self._buckets = 0
        server = self

        class _Requests(logging.Handler):
            def emit(self, record):
                server.log.append(record.getMessage())

        logging.getLogger("werkzeug").addHandler(_Requests())
        logging.getLogger("werkzeug").setLevel(logging.INFO)

    @property
    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.endpoint}, skip_instance_cache=True)

    def bucket(self) -> str:
        self._buckets += 1
        name = f"bucket-{self._buckets}"
        self.fs.mkdir(name)
        return name

    def requests(self, method: str, bucket: str) -> int:
        """Requests of ``method`` on ``bucket``'s objects since the log was last cleared."""
        return sum(f'"{method} /{bucket}/' in line for line in self.log)


@pytest.fixture(scope="session")
def s3_server():
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=True)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # s3fs (botocore) takes the endpoint and credentials from here: URLs just work
    try:
        yield S3Server(endpoint)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
# "The same output", for every test that says so: every published file byte for byte, and `mblip verify`.
# The manifest alone may differ, in what it records of the run that made it rather than of the output: when
# (``created``) and how much work was reused (``run``: chunks done, re-decided, processed; the flow).
MANIFEST_RUN_FIELDS = ("created", "run")
# The translation engine's work counters (stats.json ``processing.translation``, and the card's table of
# them) count what the runs did: a run that rescored stored rows, or chunks racing for the same cache
# entries on several workers, did different work for the same rows. Tests of such runs say so.
WORK_COUNTERS = ("processing", "translation")


def published_files(out: Path) -> dict[str, Path]:
    """Every file of an output but its work folder (``_work/``): relative path -> path."""
    return {p.relative_to(out).as_posix(): p for p in sorted(Path(out).rglob("*"))
            if p.is_file() and p.relative_to(out).parts[0] != "_work"}


def _without_work_counters(rel: str, path: Path, counters: set[str]) -> bytes:
    import json
    import re

    if rel == "stats.json":
        stats = json.loads(path.read_text())
        stats[WORK_COUNTERS[0]].pop(WORK_COUNTERS[1], None)
        return json.dumps(stats, sort_keys=True).encode()
    if rel == "README.md":
        lines = path.read_text().splitlines()
        keep = [line for line in lines if not line.startswith("Translation engine counters, summed over")
                and not (m := re.match(r"^\| (\w+) \| ", line)) or m and m[1] not in counters]
        return "\n".join(keep).encode()
    return path.read_bytes()


def _manifest_of_the_output(path: Path, work_differs: bool) -> dict:
    """The manifest without ``MANIFEST_RUN_FIELDS`` (and, when ``work_differs``, the checksums of the two
    files that hold the work counters)."""
    import json

    manifest = {k: v for k, v in json.loads(path.read_text()).items() if k not in MANIFEST_RUN_FIELDS}
    if work_differs:
        manifest["meta_files"] = [{k: v for k, v in e.items() if k not in ("bytes", "sha256")}
                                  if e["path"] in ("stats.json", "README.md") else e for e in manifest["meta_files"]]
    return manifest


def assert_same_output(out: Path, expected: Path, parts: tuple[str, ...] | None = None,
                       work_differs: bool = False) -> None:
    """``out`` holds exactly the published files of ``expected``, with the same bytes (shards, rejects,
    quarantine, ``stats.json``, the card, plots, the resolved config; the manifest but for
    ``MANIFEST_RUN_FIELDS``), and ``mblip verify`` passes on both. ``parts``: only these top-level folders or
    files (outputs made in different folders differ in the paths their config and card name).
    ``work_differs``: the runs did different work for the same rows (see ``WORK_COUNTERS``); those counters
    are left out of ``stats.json`` and the card, everything else still compared byte for byte."""
    import json

    from mblip.cli import main

    def select(root: Path) -> dict[str, Path]:
        return {rel: p for rel, p in published_files(root).items() if parts is None or rel.split("/")[0] in parts}

    got, want = select(out), select(expected)
    assert want, f"{expected}: no published files"
    assert sorted(got) == sorted(want), f"files only in {out}: {sorted(set(got) - set(want))}, " \
                                        f"only in {expected}: {sorted(set(want) - set(got))}"
    counters: set[str] = set()
    if work_differs and "stats.json" in want:
        for path in (got["stats.json"], want["stats.json"]):
            counters |= set(json.loads(path.read_text())[WORK_COUNTERS[0]].get(WORK_COUNTERS[1]) or {})

    def content(rel: str, path: Path) -> bytes:
        return _without_work_counters(rel, path, counters) if work_differs else path.read_bytes()

    differ = [rel for rel in want if rel != "manifest.json" and content(rel, got[rel]) != content(rel, want[rel])]
    assert not differ, f"{out} and {expected}: these files differ: {differ}"
    if "manifest.json" in want:
        manifests = [_manifest_of_the_output(p, work_differs) for p in (got["manifest.json"], want["manifest.json"])]
        assert manifests[0] == manifests[1], f"{out} and {expected}: the manifests differ"
    for root in (out, expected):
        assert main(["verify", str(root)]) == 0, f"mblip verify {root} failed"


@pytest.fixture(scope="session")
def same_output():
    """``assert_same_output`` as a fixture (test modules cannot import conftest)."""
    return assert_same_output


def set_aside(out: Path, name: str) -> Path:
    """Move a finished output next to itself under ``name``, so that another run writes at the same path
    (outputs are compared byte for byte, and the resolved config names the output folder)."""
    return Path(out).rename(Path(out).with_name(name))


@pytest.fixture(scope="session")
def set_output_aside():
    """``set_aside`` as a fixture."""
    return set_aside

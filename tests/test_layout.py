"""The layout's rules, checked on the source: which package may import which, and that a non-editable
install carries every resource the code reads (no file outside the installed packages)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# package -> top-level modules it must never import, not even inside a function
# (``dev`` is maintainers' tooling outside the wheel: no installed package may import it)
FORBIDDEN = {
    "pipeline": {"prefect", "prefect_dask", "flows", "model", "mblip", "dev", "tests"},
    "model": {"prefect", "flows", "mblip", "dev", "tests"},
    "flows": {"mblip", "dev", "tests"},
    "mblip": {"dev", "tests"},
    "data_cards": {"pipeline", "flows", "model", "mblip", "dev", "tests"},
}
# what the wheel installs at the top of site-packages (besides its .dist-info)
WHEEL_TOP_LEVEL = {"mblip", "pipeline", "flows", "model", "data_cards"}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_downwards(package):
    bad = {str(path.relative_to(REPO)): sorted(imported_modules(path) & FORBIDDEN[package])
           for path in sorted((REPO / package).rglob("*.py"))}
    assert {k: v for k, v in bad.items() if v} == {}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # built from a clean copy of the checkout's files: an in-tree build/ folder keeps stale modules around
    source, wheel_dir = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheel_dir), str(source)], check=True, capture_output=True)
    (path,) = wheel_dir.glob("*.whl")
    return path


def test_the_wheel_installs_only_the_user_packages(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == WHEEL_TOP_LEVEL
    # maintainers' tooling and the tests stay in the checkout
    assert not [n for n in names if n.startswith(("dev/", "tests/", "tools/"))]
    # what users run ships: the demo's configs, the benchmarks, the MT and filter evaluation
    for needed in ("pipeline/demo/demo.yaml", "pipeline/demo/demo_all_tasks.yaml", "flows/demo.py",
                   "pipeline/bench/translate.py", "flows/bench/flow.py", "pipeline/nllb/evaluate.py",
                   "pipeline/filters/evaluate.py", "model/demo/eval_model.py", "pipeline/browse/browse.js",
                   "pipeline/browse/browse.css"):
        assert needed in names, needed


def test_a_non_editable_install_reads_only_its_own_files(tmp_path, wheel):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = """
import sys, yaml
import pipeline, pipeline.demo as demo
from pipeline.card.metadata import load_source_card
from pipeline.config import load_config
from pipeline.languages import load_languages
from pipeline.nllb.shipped import shipped_model_dir, shipped_val_dir
from pipeline.template_table import TEMPLATES
assert pipeline.__file__.startswith(sys.argv[1]), pipeline.__file__
assert len(load_languages()) == 96
for config in (demo.DEMO_CONFIG, demo.DEMO_ALL_TASKS_CONFIG):
    assert str(config).startswith(sys.argv[1]) and yaml.safe_load(config.read_text())["sources"]
for source in ("coco_captions", "vqav2", "coco_karpathy"):
    assert load_source_card(source)["license"]
assert (shipped_model_dir() / "model.bin").is_file() and (shipped_val_dir() / "val.en.gz").is_file()
assert TEMPLATES
print("ok")
"""
    # the install first on the path, and run from elsewhere: the checkout cannot be found by accident
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe, str(target)], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"

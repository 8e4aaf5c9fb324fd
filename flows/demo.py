"""``mblip demo``: generate the demo sources (every task of the mix, each in its official format), then run
the real ``generate`` flow on them with the shipped translator (a tiny random-weight one when the install
has none) and print the run summary."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from flows.generate import run_generate
from pipeline.demo import DEMO_ALL_TASKS_CONFIG, DEMO_CONFIG
from pipeline.demo.data import CAPTION_TEMPLATES, generate_demo_data
from pipeline.demo.tasks import generate_task_demo_data
from pipeline.demo.web import prepare_web_demo
from pipeline.nllb.shapes import build_tiny_random_model
from pipeline.nllb.shipped import shipped_model_dir
from pipeline.summary import print_summary


def run_demo(out: Path, images: int = 200, base_only: bool = False, web: bool = True) -> int:
    config_path, note = prepare_demo(out, images, base_only, web)
    manifest = run_generate(str(config_path), show_progress=True)
    print_summary(Path(out).resolve() / "dataset", manifest, note=note)
    return 0


def prepare_demo(out: Path, images: int = 200, base_only: bool = False, web: bool = True) -> tuple[Path, str | None]:
    """The demo's data and config under ``out``: its path, and a note for the summary (or None).

    ``base_only``: COCO captions and VQAv2 alone, so no web sources either, whatever ``web`` says."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    generate_demo_data(out / "demo-data", n_images=images, seed=0)
    config_path = out / "demo.yaml"
    if base_only:
        shutil.copyfile(DEMO_CONFIG, config_path)
    else:  # every task of the mix, each source in its official format
        generate_task_demo_data(out / "demo-data")
        shutil.copyfile(DEMO_ALL_TASKS_CONFIG, config_path)
    note = None
    try:
        shipped_model_dir()
    except FileNotFoundError:
        note = use_tiny_random_model(out, config_path)
    if web and not base_only:
        web_note = prepare_web_demo(out, config_path)
        note = "\n".join(n for n in (note, web_note) if n) or None
    return config_path, note


def use_tiny_random_model(out: Path, config_path: Path) -> str:
    """Without a shipped model, point the demo config at a tiny random-weight NLLB built locally."""
    texts = [t.format(c="red", s="circle", size="small", where="top left") for t in CAPTION_TEMPLATES]
    texts += ["What color is the square?", "What shape is shown in the image?", "Is the triangle blue?"]
    model_dir = build_tiny_random_model(out / "models" / "tiny-random", texts * 20, vocab_size=120)
    config = yaml.safe_load(config_path.read_text())
    config.setdefault("translation", {})["model"] = str(model_dir)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return ("NOTE: no trained translation model is installed, so this demo used a tiny RANDOM-weight "
            "NLLB-shaped model: its translations are noise and the filter rejects them.")

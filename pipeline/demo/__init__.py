"""The demo's sources: synthetic scenes in every official format of the mix, its configs, the web demo's
caption file and local file server. ``flows.demo`` runs the real ``generate`` flow on them."""

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
DEMO_CONFIG = DEMO_DIR / "demo.yaml"
DEMO_ALL_TASKS_CONFIG = DEMO_DIR / "demo_all_tasks.yaml"

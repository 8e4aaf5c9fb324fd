"""The ``regenerate`` flow: bring an existing dataset up to date after a change, redoing only what the
change touches.

* a new filter threshold: every chunk is re-decided from its stored scores; nothing is translated;
* a new MT model (or decoding setting): chunks are translated again (the translation cache answers
  what it already has);
* ``sources``: those sources are read again (e.g. they grew) and their chunks reprocessed;
* ``languages``: the rows of those languages are recomputed in every chunk.

Only output files whose bytes change are rewritten; the manifest is removed before the first file
moves and written last, and the card and stats are published with it.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.generate import build_in_flow
from flows.lifecycle import start_guarded_embedded_server
from flows.runtime import make_task_runner
from pipeline.config import load_config
from pipeline.output_dir import RESOLVED_CONFIG, output_lock
from pipeline.languages import get_language


@flow(name="regenerate", log_prints=True)
def regenerate(
    out_dir: str,
    languages: list[str] | None = None,
    sources: list[str] | None = None,
    model: str | None = None,
    min_bt_chrf: float | None = None,
    reverse: str | None = None,
    config_path: str | None = None,
    show_progress: bool = False,
) -> dict:
    """Update the dataset in ``out_dir`` (its saved config, or ``config_path``) with the given changes."""
    out = Path(out_dir).resolve()
    base = Path(config_path) if config_path else out / RESOLVED_CONFIG
    if not base.is_file():
        raise FileNotFoundError(f"{base} not found: regenerate needs a finished dataset or --config")
    overrides: dict = {"output": {"dir": str(out)}}
    if model is not None:
        overrides["translation"] = {"model": str(Path(model).resolve()) if Path(model).exists() else model}
    if min_bt_chrf is not None:
        overrides.setdefault("filter", {})["min_bt_chrf"] = min_bt_chrf
    if reverse is not None:  # stored outputs of another mode are rescored (forced decoding), not translated
        overrides.setdefault("filter", {})["reverse"] = reverse
    config = load_config(base, overrides)

    configured = [lang.code for lang in config.languages()]
    wanted_langs = tuple(get_language(code).code for code in languages or ())
    unknown = sorted(set(wanted_langs) - set(configured))
    if unknown:
        raise ValueError(f"languages {', '.join(unknown)} are not in this dataset's run.languages "
                         f"({', '.join(configured)})")
    names = [s.source_name for s in config.sources]
    unknown = sorted(set(sources or ()) - set(names))
    if unknown:
        raise ValueError(f"sources {', '.join(unknown)} are not in this dataset's config (have {', '.join(names)})")

    run_info = {"flow": "regenerate", "languages": list(wanted_langs), "sources": list(sources or ()),
                "model": model, "min_bt_chrf": min_bt_chrf, "reverse": reverse}
    return build_in_flow(config, show_progress=show_progress, force_sources=tuple(sources or ()),
                         force_languages=wanted_langs, run_info=run_info)


def run_regenerate(out_dir: str, dask_address: str | None = None, workers: int | None = None, **changes) -> dict:
    """Entry point for the CLI: pick the task runner, then run the flow."""
    with output_lock(out_dir):
        runner = make_task_runner(dask_address=dask_address, workers=workers or None)
        start_guarded_embedded_server()
        return regenerate.with_options(task_runner=runner)(out_dir, **changes)

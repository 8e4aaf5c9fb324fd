"""The ``regenerate`` flow: bring an existing dataset up to date after a change, redoing only what the
change touches.

* a new filter threshold (``min_bt_chrf``), or a whole filter rules file (``rules``, e.g. the per-language
  thresholds ``mblip calibrate`` proposes): every chunk is re-decided from its stored scores; nothing is
  translated. The file's keys replace the dataset's (``per_language`` as a whole), the rest stay; the
  manifest's ``run.rules`` names the file and its sha256;
* a new MT model (or decoding setting): chunks are translated again (the translation cache answers
  what it already has);
* ``sources``: those sources are read again (e.g. they grew) and their chunks reprocessed;
* ``languages``: the rows of those languages are recomputed in every chunk;
* ``reverse`` (another reverse check): stored outputs are rescored by forced decoding, nothing translated;
  ``contrasts`` (the source margin's contrast sources, e.g. to store margins for calibration): chunks are
  processed again, the translation cache answering every text it holds.

Only output files whose bytes change are rewritten; the manifest is removed before the first file
moves and written last, and the card and stats are published with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.generate import build_in_flow
from flows.lifecycle import start_guarded_embedded_server
from flows.runtime import make_task_runner
from pipeline.config import PipelineConfig, load_config
from pipeline.filters.rules import load_rules
from pipeline.io import sha256_file
from pipeline.languages import get_language
from pipeline.output_dir import RESOLVED_CONFIG, check_existing_output, output_lock
from pipeline.preflight import check_run, check_translation_model


@dataclass(frozen=True)
class RegeneratePlan:
    """A checked regenerate request: the config to build and what to force."""

    config: PipelineConfig
    languages: tuple[str, ...]
    sources: tuple[str, ...]
    run_info: dict


def plan_regenerate(out_dir: str, languages: list[str] | None = None, sources: list[str] | None = None,
                    model: str | None = None, min_bt_chrf: float | None = None, reverse: str | None = None,
                    config_path: str | None = None, rules: str | None = None,
                    contrasts: int | None = None) -> RegeneratePlan:
    """Check a regenerate request without touching anything; errors name the folder, file or flag."""
    out = check_existing_output(out_dir).resolve()
    base = Path(config_path) if config_path else out / RESOLVED_CONFIG
    if not base.is_file():
        raise FileNotFoundError(f"{base} not found: regenerate needs a finished dataset or --config")
    overrides: dict = {"output": {"dir": str(out)}}
    flags = []
    if model is not None:
        check_translation_model(model, "--model", converted=True)
        overrides["translation"] = {"model": model if model == "shipped" else str(Path(model).resolve())}
        flags.append(f"--model {model}")
    applied = None
    if rules is not None:  # a filter rules file: its keys replace the dataset's filter thresholds
        chosen = load_rules(rules)  # one-line errors naming the file and the knob
        overrides["filter"] = chosen.model_dump(mode="json", include=chosen.model_fields_set)
        applied = {"file": str(Path(rules).resolve()), "sha256": sha256_file(rules)}
        flags.append(f"--rules {rules}")
    if min_bt_chrf is not None:
        overrides.setdefault("filter", {})["min_bt_chrf"] = min_bt_chrf
        flags.append(f"--min-bt-chrf {min_bt_chrf:g}")
    if reverse is not None:  # stored outputs of another mode are rescored (forced decoding), not translated
        overrides.setdefault("filter", {})["reverse"] = reverse
        flags.append(f"--reverse {reverse}")
    if contrasts is not None:  # margins against another number of sources: scored again (texts from the cache)
        overrides.setdefault("filter", {})["contrasts"] = contrasts
        flags.append(f"--contrasts {contrasts}")
    config = override_config(base, overrides, " ".join(flags))
    check_run(config)

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
                "model": model, "min_bt_chrf": min_bt_chrf, "reverse": reverse, "rules": applied,
                "contrasts": contrasts}
    return RegeneratePlan(config, wanted_langs, tuple(sources or ()), run_info)


def override_config(base: Path, overrides: dict, flags: str) -> PipelineConfig:
    """``base`` with the flags' ``overrides``; an invalid value is blamed on its flag, not on the file."""
    load_config(base, {"output": overrides["output"]})  # the file's own errors name the file
    try:
        return load_config(base, overrides)
    except ValueError as e:
        errors = e.__cause__.errors() if hasattr(e.__cause__, "errors") else None
        detail = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in errors) if errors else str(e)
        raise ValueError(f"{flags}: {detail}") from e


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
    rules: str | None = None,
    contrasts: int | None = None,
) -> dict:
    """Update the dataset in ``out_dir`` (its saved config, or ``config_path``) with the given changes."""
    plan = plan_regenerate(out_dir, languages, sources, model, min_bt_chrf, reverse, config_path, rules, contrasts)
    return build_in_flow(plan.config, show_progress=show_progress, force_sources=plan.sources,
                         force_languages=plan.languages, run_info=plan.run_info)


def run_regenerate(out_dir: str, dask_address: str | None = None, workers: int | None = None,
                   show_progress: bool = False, **changes) -> dict:
    """Entry point for the CLI: check the request (before anything is locked, created or started), pick
    the task runner, then run the flow."""
    plan_regenerate(out_dir, **changes)
    with output_lock(out_dir):
        runner = make_task_runner(dask_address=dask_address, workers=workers or None)
        start_guarded_embedded_server()
        return regenerate.with_options(task_runner=runner)(out_dir, show_progress=show_progress, **changes)

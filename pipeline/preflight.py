"""Checks a run makes before it starts: before its output folder is created or locked, before the Prefect
server starts and before any source is read. A mistyped path or model then ends in one ``error:`` line
that names it, not in a traceback from inside a flow after the server's start (10 to 20 s later)."""

from __future__ import annotations

from pathlib import Path

from pipeline.build import resolve_model_dir
from pipeline.config import PipelineConfig
from pipeline.ingest.stage import check_image_root
from pipeline.nllb.convert import SPM_FILENAME


def check_translation_model(model: str, knob: str = "translation.model", converted: bool = False) -> Path:
    """The folder of the translation model ``model`` names ("shipped": the package's own).

    It must exist. With ``converted`` (a model about to translate, e.g. ``regenerate --model``) it must
    also hold a converted model; otherwise not, as a run that only re-decides stored scores needs none.
    """
    path = Path(resolve_model_dir(model))
    if not path.is_dir():
        raise ValueError(f"{knob}: {model}: no such model folder; give a converted NLLB model (mblip convert-nllb "
                         "MODEL OUT) or 'shipped'")
    if converted and not ((path / "model.bin").is_file() and (path / SPM_FILENAME).is_file()):
        raise ValueError(f"{knob}: {path} is not a converted NLLB model (needs model.bin and {SPM_FILENAME}); "
                         "create one with mblip convert-nllb MODEL OUT")
    return path


def check_run(config: PipelineConfig) -> None:
    """Everything a run of ``config`` needs that can be checked without reading its data."""
    check_translation_model(config.translation.model)
    for source in config.sources:
        check_image_root(source)

"""The small NLLB-architecture translator shipped inside the package (``pipeline/assets/nllb-multi30k``).

A CTranslate2 int8 model trained on Multi30k (English <-> German, French, Czech; see
``data_cards/nllb-multi30k.md`` and ``dev.mt.train_small``). It lets demos and tests translate
for real without downloading NLLB-200; it is not a substitute for NLLB-200 on real data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_MODEL_NAME = "nllb-multi30k"
SHIPPED_VAL_NAME = "multi30k-val"
SHIPPED_QUESTIONS_VAL_NAME = "xgqa-val"  # xGQA en/de questions held out of the model's training (by image)
# (source, target) NLLB codes the shipped model was trained on.
SHIPPED_DIRECTIONS = (
    ("eng_Latn", "deu_Latn"), ("eng_Latn", "fra_Latn"), ("eng_Latn", "ces_Latn"),
    ("deu_Latn", "eng_Latn"), ("fra_Latn", "eng_Latn"), ("ces_Latn", "eng_Latn"),
)


class ShippedModelMissingError(FileNotFoundError):
    """The package was installed without its model asset."""


def _asset(name: str) -> Path:
    return Path(str(resources.files("pipeline").joinpath("assets", name)))


def shipped_model_dir() -> Path:
    """Directory of the shipped CTranslate2 model, ready for ``pipeline.nllb.engine.load_translator``."""
    path = _asset(SHIPPED_MODEL_NAME)
    if not (path / "model.bin").is_file():
        raise ShippedModelMissingError(
            f"the shipped translation model is missing from {path} (needs model.bin); reinstall the package "
            "from a full checkout, or train and convert it with `python -m dev.mt.train_small` and "
            f"`mblip convert-nllb RUN/best {path}` (see data_cards/nllb-multi30k.md)"
        )
    return path


def shipped_val_dir() -> Path:
    """Directory of the shipped Multi30k validation split (``val.{en,de,fr,cs}.gz``, 1014 lines each)."""
    path = _asset(SHIPPED_VAL_NAME)
    if not (path / "val.en.gz").is_file():
        raise ShippedModelMissingError(f"the shipped Multi30k validation split is missing from {path}")
    return path


def shipped_questions_val_dir() -> Path:
    """Directory of the xGQA questions held out of the shipped model's training (``val.{en,de}.gz``, ``val.ids``)."""
    path = _asset(SHIPPED_QUESTIONS_VAL_NAME)
    if not (path / "val.en.gz").is_file():
        raise ShippedModelMissingError(f"the shipped held-out xGQA questions are missing from {path}")
    return path

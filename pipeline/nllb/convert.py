"""Convert an NLLB-architecture Hugging Face checkpoint (hub id or local directory) to CTranslate2.

Wraps CTranslate2's own ``TransformersConverter``; copies the sentencepiece model next to the
converted weights so the runtime needs nothing else, and records what was converted in
``mblip_model.json`` so an up-to-date conversion is skipped and every dataset can name its model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

METADATA_FILENAME = "mblip_model.json"
SPM_FILENAME = "sentencepiece.bpe.model"  # the file name NLLB checkpoints give their sentencepiece model
QUANTIZATIONS = ("int8", "int8_float16", "int8_bfloat16", "int8_float32", "float16", "bfloat16", "float32")


def _local_fingerprint(model: str) -> str | None:
    """A cheap content fingerprint of a local checkpoint (names, sizes, mtimes), None for hub ids."""
    path = Path(model)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def _max_positions(model: str, revision: str | None) -> int | None:
    """Longest sequence the model has position encodings for (input and output are capped to it)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model, revision=revision) if revision else AutoConfig.from_pretrained(model)
    return getattr(config, "max_position_embeddings", None)


def read_model_metadata(model_dir: str | Path) -> dict:
    path = Path(model_dir) / METADATA_FILENAME
    if not path.exists():
        return {"model_id": str(model_dir), "revision": None, "quantization": None}
    return json.loads(path.read_text())


def convert_nllb(
    model: str,
    out_dir: str | Path,
    quantization: str = "int8",
    revision: str | None = None,
    force: bool = False,
    languages: tuple[str, ...] | None = None,
) -> Path:
    """Convert ``model`` (hub id or directory) into ``out_dir``; skipped when already up to date.

    ``languages``: the NLLB codes a model covers when it was trained on only some (recorded so the
    filter runs its model signals only where they mean something); None for NLLB-200 (all).
    """
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {quantization!r} is not one of {', '.join(QUANTIZATIONS)}")
    out_dir = Path(out_dir)
    wanted = {
        "model_id": model,
        "revision": revision,
        "quantization": quantization,
        "source_fingerprint": _local_fingerprint(model),
        "ctranslate2_version": ctranslate2.__version__,
        "languages": sorted(languages) if languages else None,
    }
    meta_path = out_dir / METADATA_FILENAME
    if not force and meta_path.exists() and (out_dir / "model.bin").exists():
        have = json.loads(meta_path.read_text())
        if all(have.get(k) == v for k, v in wanted.items()):
            log.info("conversion of %s in %s is up to date, skipping", model, out_dir)
            return out_dir

    load_kwargs = {"revision": revision} if revision else {}
    converter = TransformersConverter(
        model, copy_files=[SPM_FILENAME], load_as_float16=quantization in ("float16", "int8_float16"), **load_kwargs
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a sibling temporary directory and swap it in: a killed conversion never leaves a
    # half-written model that looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        converter.convert(str(tmp), quantization=quantization, force=True)
        meta = dict(wanted)
        meta["max_positions"] = _max_positions(model, revision)
        (tmp / METADATA_FILENAME).write_text(json.dumps(meta, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted %s -> %s (%s)", model, out_dir, quantization)
    return out_dir

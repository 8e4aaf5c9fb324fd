"""Export a checkpoint as a plain ``Blip2ForConditionalGeneration`` with its processor.

The LLM is reloaded unquantised (LoRA cannot be merged into 8-bit/4-bit weights), the checkpoint's
trainable tensors are loaded, LoRA is merged into the LLM's linear layers, and the result is saved
with ``save_pretrained``: ``Blip2ForConditionalGeneration.from_pretrained(dir)`` and
``Blip2Processor.from_pretrained(dir)`` load it without this package or peft. A checkpoint whose
trainable tensors are truncated, edited or hold NaN or infinity is refused before anything is written
(``model/checkpoint.py``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from model.checkpoint import build_from_checkpoint
from model.model_card import CARD_FILE, render_model_card

log = logging.getLogger(__name__)


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, dtype: str = "float32", device: str = "cpu",
                      eval_results: list[dict] = (), license: str = "other", datasets: list[str] = (),
                      name: str | None = None, paper: dict | None = None) -> Path:
    """Merge ``checkpoint`` (a ``checkpoints/step-*`` directory) into a standalone model at ``out_dir``, with
    its model card ``README.md`` (``model/model_card.py``: ``eval_results`` from ``mblip eval``, the
    ``license``, the training data's Hub ids ``datasets``, the card's title ``name``, the paper's numbers
    ``paper`` beside the scores).

    ``dtype``: storage dtype of the exported weights ("float32", "bfloat16", "float16"); the Q-Former
    stays float32 (transformers keeps it so when loading, as BLIP-2 does).
    """
    import torch
    from peft import PeftModel

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    assembled = build_from_checkpoint(checkpoint, torch.device(device), quantization="none", dtype=dtype)
    model = assembled.model
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    model.eval()
    for param in model.parameters():
        param.requires_grad = False
    model.config.use_cache = True

    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    assembled.processor.save_pretrained(tmp)
    card = render_model_card(checkpoint, eval_results=eval_results, license=license, datasets=datasets, name=name,
                             paper=paper)
    (tmp / CARD_FILE).write_text(card, encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    log.info("exported %s to %s", checkpoint, out_dir)
    return out_dir

"""Captioning and question answering with an exported model (plain transformers, beam search).

Prompts come from the one template table training uses (``pipeline/templates.py``, through
``model/templates.py``): "Caption the image in German." and "Answer in German: {question}".
The reference evaluation used beam search with 5 beams and up to 50
new tokens for captions (Geigle et al. 2024, Sec. 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from model.templates import caption_prompt, vqa_prompt

DEFAULT_BEAMS = 5
CAPTION_MAX_NEW_TOKENS = 50
ANSWER_MAX_NEW_TOKENS = 10


@lru_cache(maxsize=2)
def load_exported(model_dir: str, device: str = "cpu"):
    """(model, processor) from an export directory; cached per process."""
    import torch
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    processor = Blip2Processor.from_pretrained(model_dir)
    return model, processor


def generate(model, processor, images: Sequence, prompts: Sequence[str], num_beams: int = DEFAULT_BEAMS, max_new_tokens: int = CAPTION_MAX_NEW_TOKENS) -> list[str]:
    """Generated text for each (image, prompt); the prompt is stripped for decoder-only LLMs."""
    import torch

    inputs = processor(images=list(images), text=list(prompts), return_tensors="pt", padding=True)
    inputs = inputs.to(model.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    with torch.no_grad():
        output = model.generate(**inputs, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False)
    if not model.config.text_config.is_encoder_decoder:
        output = output[:, inputs["input_ids"].shape[1] :]
    return [text.strip() for text in processor.batch_decode(output, skip_special_tokens=True)]


def caption(image_path: str | Path, lang: str, model_dir: str | Path, num_beams: int = DEFAULT_BEAMS, device: str = "cpu") -> str:
    from model.data import load_image

    model, processor = load_exported(str(model_dir), device)
    return generate(model, processor, [load_image(Path(image_path))], [caption_prompt(lang)], num_beams)[0]


def ask(image_path: str | Path, question: str, lang: str, model_dir: str | Path, num_beams: int = DEFAULT_BEAMS, device: str = "cpu") -> str:
    from model.data import load_image

    model, processor = load_exported(str(model_dir), device)
    prompt = vqa_prompt(question, lang)
    return generate(model, processor, [load_image(Path(image_path))], [prompt], num_beams, ANSWER_MAX_NEW_TOKENS)[0]

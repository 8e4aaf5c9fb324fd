"""Captioning and question answering with an exported model (plain transformers, beam search).

Prompts come from the one template table training uses (``pipeline/template_table.py``, through
``model/templates.py``): "Caption the image in German." and "{question} Short German answer:".
Decoding follows the paper's evaluation (Geigle et al. 2024, Sec. 5): captions with beam 5, 1 to 50
new tokens; short answers with beam 5, 1 to 10 new tokens and length penalty -1 (which favours short
beams, as VQA answers are a few words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from model.data import load_image
from model.templates import caption_prompt, vqa_prompt


@dataclass(frozen=True)
class GenerationSettings:
    num_beams: int = 5  # beam width; 1 = greedy
    max_new_tokens: int = 50
    min_new_tokens: int = 1  # never an empty output
    length_penalty: float = 1.0  # exponent on the length in beam scores; < 0 favours shorter outputs


CAPTION_GENERATION = GenerationSettings(num_beams=5, max_new_tokens=50, min_new_tokens=1, length_penalty=1.0)
ANSWER_GENERATION = GenerationSettings(num_beams=5, max_new_tokens=10, min_new_tokens=1, length_penalty=-1.0)
DEFAULT_BEAMS = CAPTION_GENERATION.num_beams
CAPTION_MAX_NEW_TOKENS = CAPTION_GENERATION.max_new_tokens
ANSWER_MAX_NEW_TOKENS = ANSWER_GENERATION.max_new_tokens


def generation_settings(task: str, **overrides) -> GenerationSettings:
    """The paper's settings for ``task`` ("caption" or "answer"), with the non-None ``overrides``."""
    base = {"caption": CAPTION_GENERATION, "answer": ANSWER_GENERATION}[task]
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@lru_cache(maxsize=2)
def load_exported(model_dir: str, device: str = "cpu"):
    """(model, processor) from an export directory; cached per process."""
    import torch
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    processor = Blip2Processor.from_pretrained(model_dir)
    return model, processor


def generate(model, processor, images: Sequence, prompts: Sequence[str], num_beams: int = DEFAULT_BEAMS,
             max_new_tokens: int = CAPTION_MAX_NEW_TOKENS, min_new_tokens: int = 0,
             length_penalty: float = 1.0) -> list[str]:
    """Generated text for each (image, prompt); the prompt is stripped for decoder-only LLMs."""
    import torch

    inputs = processor(images=list(images), text=list(prompts), return_tensors="pt", padding=True)
    inputs = inputs.to(model.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    with torch.no_grad():
        output = model.generate(**inputs, num_beams=num_beams, max_new_tokens=max_new_tokens,
                                min_new_tokens=min_new_tokens, length_penalty=length_penalty, do_sample=False)
    if not model.config.text_config.is_encoder_decoder:
        output = output[:, inputs["input_ids"].shape[1] :]
    return [text.strip() for text in processor.batch_decode(output, skip_special_tokens=True)]


def caption(image_path: str | Path, lang: str, model_dir: str | Path, settings: GenerationSettings = CAPTION_GENERATION,
            device: str = "cpu") -> str:
    model, processor = load_exported(str(model_dir), device)
    return generate(model, processor, [load_image(Path(image_path))], [caption_prompt(lang)], **vars(settings))[0]


def ask(image_path: str | Path, question: str, lang: str, model_dir: str | Path,
        settings: GenerationSettings = ANSWER_GENERATION, device: str = "cpu") -> str:
    model, processor = load_exported(str(model_dir), device)
    prompt = vqa_prompt(question, lang)
    return generate(model, processor, [load_image(Path(image_path))], [prompt], **vars(settings))[0]

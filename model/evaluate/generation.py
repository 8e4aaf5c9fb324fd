"""Batched generation for evaluation, from an exported model or a training checkpoint.

``load_for_eval(MODEL_DIR)`` accepts an export (``mblip export-model``: a plain
``Blip2ForConditionalGeneration`` + processor), a checkpoint directory (``checkpoints/step-*``: the
trainable tensors + config; the LLM is rebuilt from the config, in 8-bit/4-bit on a GPU as in
training, unquantised on CPU, and LoRA stays unmerged), or a training output directory (its newest
checkpoint). On a GPU the model runs in bf16 (autocast, as in training), on CPU in float32.

Inputs are built like the training inputs: ``n_images x num_query_tokens`` image placeholders, then
the prompt (seq2seq: with ``</s>``). BLIP-2 scatters the projected query outputs into the placeholders
in order, so a MaRVL item with two images gets its left image's 32 query outputs, then its right
image's, as 64 visual tokens before the prompt (mBLIP reference: the images go through ViT and
Q-Former separately; no side-by-side pixel image). Decoder-only LLMs are padded on the left.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.build import unwrap_blip2
from model.checkpoint import build_from_checkpoint, find_checkpoint
from model.evaluate.benchmarks import GenerationSettings

MAX_PROMPT_TOKENS = 128  # the training budget of the prompt (mBLIP: 128)


@dataclass
class EvalModel:
    model: Any  # Blip2ForConditionalGeneration (LoRA layers injected, unmerged, for a checkpoint)
    processor: Any
    decoder_only: bool
    device: Any
    source: str  # "export" or "checkpoint <path>"


def resolve_device(device: str = "auto"):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def load_for_eval(model_dir: str | Path, device: str = "auto", quantization: str = "auto") -> EvalModel:
    """Load MODEL_DIR for generation (see the module docstring).

    ``quantization``: "auto" = the training config's LLM quantisation on a GPU (checkpoints) and none
    otherwise; "none", "8bit" or "4bit" force it (k-bit needs CUDA and bitsandbytes).
    """
    model_dir = Path(model_dir)
    dev = resolve_device(device)
    checkpoint = find_checkpoint(model_dir)
    if checkpoint is not None:
        return _load_checkpoint(checkpoint, dev, quantization)
    if (model_dir / "config.json").is_file():
        return _load_export(model_dir, dev, quantization)
    raise FileNotFoundError(
        f"{model_dir} is neither an exported model (config.json, from `mblip export-model`) nor a training "
        "checkpoint (checkpoints/step-*) nor a training output holding checkpoints"
    )


def _load_checkpoint(checkpoint: Path, device, quantization: str) -> EvalModel:
    assembled = build_from_checkpoint(checkpoint, device, quantization)
    model = unwrap_blip2(assembled.model).eval()
    for param in model.parameters():
        param.requires_grad = False
    return EvalModel(model, assembled.processor, assembled.decoder_only, device, f"checkpoint {checkpoint}")


def _load_export(model_dir: Path, device, quantization: str) -> EvalModel:
    import torch
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    kwargs: dict = {"dtype": torch.bfloat16 if device.type == "cuda" else torch.float32}
    if quantization in ("8bit", "4bit"):
        from transformers import BitsAndBytesConfig

        # Only the LLM is quantised, as in training; the vision side stays bf16.
        skip = ["vision_model", "qformer", "language_projection", "query_tokens"]
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_8bit=quantization == "8bit",
            load_in_4bit=quantization == "4bit",
            llm_int8_skip_modules=skip,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = {"": device.index or 0}
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir, **kwargs)
    if "device_map" not in kwargs:
        model = model.to(device)
    model.eval()
    processor = Blip2Processor.from_pretrained(model_dir)
    decoder_only = not model.config.text_config.is_encoder_decoder
    return EvalModel(model, processor, decoder_only, device, "export")


def encode_prompts(
    tokenizer,
    prompts: Sequence[str],
    image_counts: Sequence[int],
    image_token_index: int,
    num_query_tokens: int,
    decoder_only: bool,
    pad_token_id: int,
):
    """input_ids and attention_mask: per item ``count x Q`` image placeholders + prompt tokens, padded
    on the left for decoder-only LLMs (generation continues from the last position), right otherwise."""
    import torch

    rows = []
    for prompt, count in zip(prompts, image_counts):
        if decoder_only:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][:MAX_PROMPT_TOKENS]
        else:
            ids = tokenizer(prompt, truncation=True, max_length=MAX_PROMPT_TOKENS)["input_ids"]
        rows.append([image_token_index] * (count * num_query_tokens) + ids)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(rows):
        span = slice(width - len(ids), width) if decoder_only else slice(0, len(ids))
        input_ids[i, span] = torch.tensor(ids)
        mask[i, span] = 1
    return input_ids, mask


def generate_batch(
    em: EvalModel, images: Sequence[Sequence], prompts: Sequence[str], settings: GenerationSettings
) -> list[str]:
    """Generated text for each item (``images[i]``: its PIL images, left to right; ``prompts[i]``)."""
    import torch

    model, tokenizer = em.model, em.processor.tokenizer
    config = model.config
    image_token_index = getattr(config, "image_token_id", None)
    if image_token_index is None:
        image_token_index = config.image_token_index
    input_ids, mask = encode_prompts(
        tokenizer,
        prompts,
        [len(x) for x in images],
        image_token_index,
        config.num_query_tokens,
        em.decoder_only,
        tokenizer.pad_token_id,
    )
    flat = [image for item in images for image in item]
    vision_dtype = next(model.vision_model.parameters()).dtype
    pixel_values = em.processor.image_processor(flat, return_tensors="pt")["pixel_values"]
    pixel_values = pixel_values.to(em.device, vision_dtype)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if em.device.type == "cuda" else contextlib.nullcontext()
    with torch.no_grad(), autocast:
        output = model.generate(
            pixel_values=pixel_values,
            input_ids=input_ids.to(em.device),
            attention_mask=mask.to(em.device),
            num_beams=settings.num_beams,
            max_new_tokens=settings.max_new_tokens,
            min_new_tokens=settings.min_new_tokens,
            length_penalty=settings.length_penalty,
            do_sample=False,
        )
    if em.decoder_only:
        output = output[:, input_ids.shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]

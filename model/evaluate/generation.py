"""Batched generation for evaluation, from an exported model or a training checkpoint.

``load_for_eval(MODEL_DIR)`` accepts an export (``mblip export-model``: a plain
``Blip2ForConditionalGeneration`` + processor), a checkpoint directory (``checkpoints/step-*``: the
trainable tensors + config; the LLM is rebuilt from the config, in 8-bit/4-bit on a GPU as in
training, unquantised on CPU, and LoRA stays unmerged), or a training output directory (its newest
checkpoint).

Numerics (``resolve_numerics``), by default those of the reference evaluation on a GPU: the vision side
(ViT + Q-Former) in float32 weights under fp16 autocast, the projection + LLM under bf16 autocast, the
LLM of an export in 8-bit (mBLIP evaluated with ``load_8bit``) and that of a checkpoint quantised as in
training. bitsandbytes needs CUDA, so on CPU the defaults resolve to float32 throughout, unquantised.
``quantization="bf16"`` keeps the LLM unquantised in bf16; ``vision="bf16"``/``"fp32"`` change the vision
side's autocast.

Inputs are built like the training inputs: ``n_images x num_query_tokens`` image placeholders, then
the prompt (seq2seq: with ``</s>``). BLIP-2 scatters the projected query outputs into the placeholders
in order, so a MaRVL item with two images gets its left image's 32 query outputs, then its right
image's, as 64 visual tokens before the prompt (mBLIP reference: the images go through ViT and
Q-Former separately; no side-by-side pixel image). Decoder-only LLMs are padded on the left.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.build import unwrap_blip2
from model.checkpoint import CONFIG_FILE, build_from_checkpoint, find_checkpoint
from model.config import load_config
from model.evaluate.benchmarks import GenerationSettings

MAX_PROMPT_TOKENS = 128  # the training budget of the prompt (mBLIP: 128)


# ``quantization`` knob: "auto" (the reference's: see resolve_numerics), k-bit, or unquantised LLM weights in
# bf16 or fp32; "none" = unquantised in the device's dtype (bf16 on a GPU, fp32 on CPU).
QUANTIZATION_CHOICES = ("auto", "8bit", "4bit", "bf16", "fp32", "none")
# ``vision`` knob: the vision side's autocast; its weights stay as stored (float32 in an export).
VISION_CHOICES = ("auto", "fp16", "bf16", "fp32")
KBIT = ("8bit", "4bit")


@dataclass(frozen=True)
class EvalNumerics:
    llm: str  # the frozen LLM's weights: "8bit" | "4bit" | "bf16" | "fp32"
    vision_autocast: str  # ViT + Q-Former: "fp16" | "bf16" | "no"
    llm_autocast: str  # projection + LLM: "bf16" | "no"


def resolve_numerics(
    device_type: str, quantization: str = "auto", vision: str = "auto", trained: str | None = None
) -> EvalNumerics:
    """How a model is evaluated on ``device_type`` ("cuda" or "cpu").

    ``trained``: a checkpoint's ``model.llm_quantization`` (None for an export). "auto" on a GPU is the
    reference's: an export's LLM in 8-bit, a checkpoint's as trained (mT0 8-bit, BLOOMZ 4-bit), the vision
    side under fp16 and the LLM under bf16 autocast. "auto" on CPU: float32, no quantisation, no autocast.
    """
    if quantization not in QUANTIZATION_CHOICES:
        raise ValueError(f"quantization={quantization!r}: choose one of {', '.join(QUANTIZATION_CHOICES)}")
    if vision not in VISION_CHOICES:
        raise ValueError(f"vision precision {vision!r}: choose one of {', '.join(VISION_CHOICES)}")
    gpu = device_type == "cuda"
    llm = quantization
    if llm == "auto" and gpu:
        llm = "8bit" if trained is None else (trained if trained in KBIT else "bf16")
    elif llm in ("auto", "none"):
        llm = "bf16" if gpu else "fp32"
    if llm in KBIT and not gpu:
        raise ValueError(
            f"quantization={llm} needs a CUDA GPU (bitsandbytes); on CPU use auto, bf16 or fp32 (--quantization)"
        )
    if vision == "auto":
        vision = "fp16" if gpu else "fp32"
    vision_autocast = "no" if vision == "fp32" else vision
    return EvalNumerics(llm, vision_autocast, "no" if llm == "fp32" else "bf16")


@dataclass
class EvalModel:
    model: Any  # Blip2ForConditionalGeneration (LoRA layers injected, unmerged, for a checkpoint)
    processor: Any
    decoder_only: bool
    device: Any
    source: str  # "export" or "checkpoint <path>"
    numerics: EvalNumerics | None = None  # None: the trainer's model, with its own autocast


def resolve_device(device: str = "auto"):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def load_for_eval(
    model_dir: str | Path, device: str = "auto", quantization: str = "auto", vision: str = "auto"
) -> EvalModel:
    """Load MODEL_DIR for generation (see the module docstring).

    ``quantization`` and ``vision``: the knobs of ``resolve_numerics`` (k-bit needs CUDA and bitsandbytes).
    """
    model_dir = Path(model_dir)
    dev = resolve_device(device)
    checkpoint = find_checkpoint(model_dir)
    if checkpoint is not None:
        trained = load_config(checkpoint / CONFIG_FILE).model.llm_quantization
        em = _load_checkpoint(checkpoint, dev, resolve_numerics(dev.type, quantization, vision, trained))
    elif (model_dir / "config.json").is_file():
        em = _load_export(model_dir, dev, resolve_numerics(dev.type, quantization, vision))
    else:
        raise FileNotFoundError(
            f"{model_dir} is neither an exported model (config.json, from `mblip export-model`) nor a training "
            "checkpoint (checkpoints/step-*) nor a training output holding checkpoints"
        )
    enable_part_autocast(em.model, dev.type, em.numerics)
    return em


def _load_checkpoint(checkpoint: Path, device, numerics: EvalNumerics) -> EvalModel:
    import torch

    quantization = numerics.llm if numerics.llm in KBIT else "none"
    assembled = build_from_checkpoint(checkpoint, device, quantization, "float32" if numerics.llm == "fp32" else None)
    model = unwrap_blip2(assembled.model).eval()
    if numerics.llm == "bf16":
        model.language_model.to(torch.bfloat16)
    for param in model.parameters():
        param.requires_grad = False
    source = f"checkpoint {checkpoint}"
    return EvalModel(model, assembled.processor, assembled.decoder_only, device, source, numerics)


def _load_export(model_dir: Path, device, numerics: EvalNumerics) -> EvalModel:
    import torch
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    # Loaded in float32 (an export's storage dtype by default): the vision side keeps it, as the reference's
    # ViT did, and runs under autocast; an unquantised LLM is cast below.
    kwargs: dict = {"dtype": torch.float32}
    if device.type == "cuda":
        kwargs["device_map"] = {"": device.index or 0}
    if numerics.llm in KBIT:
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ImportError(
                f"evaluating with the LLM in {numerics.llm} (the default on a GPU) needs bitsandbytes: "
                "pip install 'mblip-pipeline[gpu]', or pass --quantization bf16"
            )
        from transformers import BitsAndBytesConfig

        # Only the LLM is quantised, as in training.
        skip = ["vision_model", "qformer", "language_projection", "query_tokens"]
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_8bit=numerics.llm == "8bit",
            load_in_4bit=numerics.llm == "4bit",
            llm_int8_skip_modules=skip,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    model = Blip2ForConditionalGeneration.from_pretrained(model_dir, **kwargs)
    if "device_map" not in kwargs:
        model = model.to(device)
    if numerics.llm == "bf16":
        model.language_model.to(torch.bfloat16)
    model.eval()
    processor = Blip2Processor.from_pretrained(model_dir)
    decoder_only = not model.config.text_config.is_encoder_decoder
    return EvalModel(model, processor, decoder_only, device, "export", numerics)


def enable_part_autocast(model, device_type: str, numerics: EvalNumerics) -> None:
    """The vision side (ViT + Q-Former) and the projection + LLM each under its own autocast (mBLIP: fp16
    and bf16), as the trainer runs them; the wrappers sit on the modules' forwards, so they also hold
    inside ``generate``."""
    import torch

    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    parts = ((numerics.vision_autocast, (model.vision_model, model.qformer)),
             (numerics.llm_autocast, (model.language_projection, model.language_model)))
    for mode, modules in parts:
        if mode == "no":
            continue
        for module in modules:
            module.forward = _autocast_forward(module.forward, device_type, dtypes[mode])


def _autocast_forward(forward, device_type: str, dtype):
    import torch

    @functools.wraps(forward)
    def wrapped(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return forward(*args, **kwargs)

    return wrapped


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
    # Autocast is on the model's parts (enable_part_autocast here, the trainer's own for its model).
    with torch.no_grad():
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

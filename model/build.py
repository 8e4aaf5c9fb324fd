"""Model assembly: BLIP-2's ViT + Q-Former (+ query tokens, projection) in front of a multilingual LLM.

The BLIP-2 checkpoint contributes only its vision side: its English LLM weights are never read (we open
its safetensors shards and take the ``vision_model.``, ``qformer.``, ``query_tokens`` and
``language_projection.`` tensors). The LLM (mT0 seq2seq or BLOOMZ decoder-only) is loaded on its own.
The projection is reused when its output width equals the LLM width (Flan-T5-XL and mT0-XL are both
2048 wide, as in mBLIP), and re-initialised otherwise (BLOOMZ-7B, 4096).

Trainable set (mBLIP, Sec. 4): Q-Former, query tokens, projection and LoRA on the LLM. ViT and LLM stay
frozen. The optional "projection" stage trains the projection only, without LoRA.

Longer than most modules on purpose: loading, assembly, LoRA and the parameter accounting share the
component layout (``COMPONENTS``, ``component_of``) and are read together when checking what is trained.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.architectures import known_architecture

if TYPE_CHECKING:
    import torch
    from transformers import Blip2Config, Blip2Processor, PretrainedConfig

    from model.config import LoraSettings, ModelConfig

log = logging.getLogger(__name__)

# All attention and feed-forward matrices per LLM family (mBLIP: "all linear layers" of the LLM).
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "mt5": ("q", "k", "v", "o", "wi_0", "wi_1", "wo"),
    "t5": ("q", "k", "v", "o", "wi_0", "wi_1", "wo"),
    "umt5": ("q", "k", "v", "o", "wi_0", "wi_1", "wo"),
    "bloom": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
}
# Prefixes of the Blip2ForConditionalGeneration parameters taken from the BLIP-2 checkpoint.
VISION_SIDE_PREFIXES = ("vision_model.", "qformer.", "query_tokens", "language_projection.")
COMPONENTS = ("vision", "qformer", "query_tokens", "projection", "llm", "lora")


@dataclass
class AssembledModel:
    model: Any  # Blip2ForConditionalGeneration, or a peft PeftModel wrapping one
    processor: Blip2Processor
    decoder_only: bool
    image_token_index: int
    trainable: tuple[str, ...]  # names of the trainable parameters, in order


# ---------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------


TINY_MODEL_NAMES = ("blip2", "mt5", "bloom")  # directories written by ``python -m model.tiny DIR``


def looks_local(source: str) -> bool:
    """A path rather than a hub id: absolute, relative with ./ or ~, or more than ``owner/name``."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or Path(source).exists()


def require_source(source: str, knob: str) -> None:
    """Fail at once when ``source`` names a local directory that does not exist, saying how to make it.

    (Without this, transformers takes the missing path for a hub id and fails deep inside with a hub error.)
    """
    path = Path(source).expanduser()
    if not looks_local(source) or path.is_dir():
        return
    if path.name in TINY_MODEL_NAMES:
        how = f"build the tiny models with `python -m model.tiny {path.parent}`"
    else:
        how = f"download it (`huggingface-cli download OWNER/NAME --local-dir {path}`) or set {knob} to a hub id"
    raise FileNotFoundError(f"{knob}: model directory {path} does not exist; {how}")


def load_source_config(source: str, architecture: str | None = None) -> PretrainedConfig:
    """config.json of a hub id or local directory; ``architecture`` = a recorded shape (no I/O)."""
    from transformers import AutoConfig, Blip2Config

    if architecture:
        spec = dict(known_architecture(architecture))
        if "vision_config" in spec:
            return Blip2Config(**spec)
        model_type = spec.pop("model_type")
        return AutoConfig.for_model(model_type, **spec)
    return AutoConfig.from_pretrained(source)


def compose_config(
    blip2_config: Blip2Config, llm_config: PretrainedConfig, image_token_index: int | None
) -> Blip2Config:
    """BLIP-2 config with the vision side of ``blip2_config`` and ``llm_config`` as the text model."""
    from transformers import Blip2Config

    return Blip2Config(
        vision_config=blip2_config.vision_config.to_dict(),
        qformer_config=blip2_config.qformer_config.to_dict(),
        text_config=llm_config.to_dict(),
        num_query_tokens=blip2_config.num_query_tokens,
        image_token_index=image_token_index,
    )


def is_decoder_only(llm_config: PretrainedConfig) -> bool:
    return not getattr(llm_config, "is_encoder_decoder", False)


def lora_targets(llm_config: PretrainedConfig, override: tuple[str, ...] | None) -> tuple[str, ...]:
    if override:
        return tuple(override)
    try:
        return LORA_TARGETS[llm_config.model_type]
    except KeyError:
        raise ValueError(
            f"no default LoRA target modules for LLM type {llm_config.model_type!r}; "
            "set lora.target_modules to the names of its linear layers"
        ) from None


def _llm_hidden_size(config: PretrainedConfig) -> int:
    return config.get_text_config().hidden_size if hasattr(config, "get_text_config") else config.hidden_size


# ---------------------------------------------------------------------------------------------------
# Weights of the BLIP-2 vision side
# ---------------------------------------------------------------------------------------------------


def _source_file(source: str, filename: str) -> Path | None:
    """Path of ``filename`` in a local directory, or downloaded from the hub; None when absent."""
    local = Path(source)
    if local.is_dir():
        path = local / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(source, filename))
    except EntryNotFoundError:
        return None


def read_vision_side_state_dict(source: str) -> dict[str, torch.Tensor]:
    """The ViT, Q-Former, query-token and projection tensors of a BLIP-2 checkpoint, nothing else.

    Only the safetensors shards that hold such tensors are opened (downloaded for a hub id); the
    LLM's tensors are never read.
    """
    from safetensors import safe_open

    index_file = _source_file(source, "model.safetensors.index.json")
    if index_file is not None:
        weight_map: dict[str, str] = json.loads(index_file.read_text())["weight_map"]
        shards: dict[str, list[str]] = {}
        for key, shard in weight_map.items():
            if key.startswith(VISION_SIDE_PREFIXES):
                shards.setdefault(shard, []).append(key)
    else:
        single = _source_file(source, "model.safetensors")
        if single is None:
            raise FileNotFoundError(
                f"{source!r} has neither model.safetensors nor model.safetensors.index.json; model.blip2 "
                "must name a BLIP-2 checkpoint saved in safetensors format"
            )
        with safe_open(str(single), framework="pt") as handle:
            shards = {single.name: [k for k in handle.keys() if k.startswith(VISION_SIDE_PREFIXES)]}
    state: dict[str, torch.Tensor] = {}
    for shard, keys in shards.items():
        path = _source_file(source, shard)
        with safe_open(str(path), framework="pt") as handle:
            for key in keys:
                state[key] = handle.get_tensor(key)
    return state


# ---------------------------------------------------------------------------------------------------
# LLM, tokenizer, processor
# ---------------------------------------------------------------------------------------------------


def resolve_frozen_dtype(name: str, device: torch.device) -> torch.dtype:
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def load_llm(source: str, decoder_only: bool, quantization: str, dtype: torch.dtype, device: torch.device,
             double_quantization: bool = False):
    """The frozen LLM, in ``dtype`` or quantised (8-bit / 4-bit NF4, bitsandbytes, CUDA only)."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    model_class = AutoModelForCausalLM if decoder_only else AutoModelForSeq2SeqLM
    kwargs: dict[str, Any] = {"dtype": dtype}
    if quantization != "none":
        kwargs["quantization_config"] = _bnb_config(quantization, device, double_quantization)
        kwargs["device_map"] = {"": device.index if device.index is not None else 0}
    llm = model_class.from_pretrained(source, **kwargs)
    if quantization == "none":
        llm.to(device)
    return llm


def bnb_config(quantization: str, double_quantization: bool = False):
    """bitsandbytes settings: LLM.int8, or NF4 with bf16 compute (mBLIP: no double quantisation)."""
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=double_quantization,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def _bnb_config(quantization: str, device: torch.device, double_quantization: bool):
    import importlib.util

    if device.type != "cuda":
        raise ValueError(f"model.llm_quantization={quantization!r} needs a CUDA GPU; set it to 'none' on CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(
            f"model.llm_quantization={quantization!r} needs bitsandbytes: pip install 'mblip-pipeline[gpu]'"
        )
    return bnb_config(quantization, double_quantization)


def build_processor(blip2_source: str, llm_source: str, num_query_tokens: int, image_token: str) -> Blip2Processor:
    """BLIP-2 image processor + the LLM's tokenizer with the image placeholder token added.

    The processor prepends ``num_query_tokens`` placeholders to every prompt; the model replaces their
    embeddings by the projected query outputs. Tokenizer, processor and model config therefore all
    agree on one token id (checked in ``build_model``).
    """
    from tokenizers import AddedToken
    from transformers import AutoImageProcessor, AutoTokenizer, Blip2Processor

    tokenizer = AutoTokenizer.from_pretrained(llm_source)
    tokenizer.add_tokens([AddedToken(image_token, normalized=False, special=True)], special_tokens=True)
    image_processor = AutoImageProcessor.from_pretrained(blip2_source)
    processor = Blip2Processor(image_processor=image_processor, tokenizer=tokenizer, num_query_tokens=num_query_tokens)
    if processor.image_token.content != image_token:
        raise ValueError(
            f"processor image token {processor.image_token.content!r} != model.image_token {image_token!r}"
        )
    return processor


# ---------------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------------


def component_of(name: str) -> str:
    """Which component a parameter name belongs to (peft's ``base_model.model.`` prefix ignored)."""
    if ".lora_" in name:
        return "lora"
    name = name.removeprefix("base_model.model.")
    if name.startswith("vision_model."):
        return "vision"
    if name.startswith("qformer."):
        return "qformer"
    if name == "query_tokens":
        return "query_tokens"
    if name.startswith("language_projection."):
        return "projection"
    if name.startswith("language_model."):
        return "llm"
    raise ValueError(f"parameter {name!r} belongs to no known component")


def trainable_components(stage: str) -> tuple[str, ...]:
    if stage == "projection":
        return ("projection",)
    return ("qformer", "query_tokens", "projection", "lora")


def set_trainable(model, stage: str) -> tuple[str, ...]:
    """Freeze everything, then unfreeze exactly the stage's components; returns the trainable names."""
    wanted = trainable_components(stage)
    names = []
    for name, param in model.named_parameters():
        param.requires_grad = component_of(name) in wanted
        if param.requires_grad:
            names.append(name)
    return tuple(names)


def _attach_lora(model, llm_config, lora: LoraSettings):
    """Wrap the model with LoRA adapters on the LLM's linear layers only (not the Q-Former's)."""
    from peft import LoraConfig, get_peft_model

    targets = lora_targets(llm_config, lora.target_modules)
    # A regex on the full module name: "dense" also names Q-Former and ViT layers, which must not
    # get adapters.
    pattern = rf"language_model\..*\.({'|'.join(re.escape(t) for t in targets)})"
    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=pattern,
                        bias="none")
    return get_peft_model(model, config)


def build_meta_model(model_cfg: ModelConfig, lora: LoraSettings, stage: str = "full"):
    """The full model (with LoRA for the full stage) on the meta device: shapes only, no weights, no I/O
    beyond config.json (none at all with recorded architectures)."""
    import torch
    from transformers import Blip2ForConditionalGeneration

    if not model_cfg.blip2_architecture:
        require_source(model_cfg.blip2, "model.blip2")
    if not model_cfg.llm_architecture:
        require_source(model_cfg.llm, "model.llm")
    blip2_config = load_source_config(model_cfg.blip2, model_cfg.blip2_architecture)
    llm_config = load_source_config(model_cfg.llm, model_cfg.llm_architecture)
    config = compose_config(blip2_config, llm_config, image_token_index=None)
    with torch.device("meta"):
        model = Blip2ForConditionalGeneration(config)
        head = model.language_model.get_output_embeddings()
        if _declares_untied_head(model_cfg.llm, model_cfg.llm_architecture) and (
            head.weight is model.language_model.get_input_embeddings().weight
        ):
            # transformers 5 always builds mT5 with a tied head, but loads the separate head that
            # mT0 checkpoints store; count it as the loaded model will have it.
            head.weight = torch.nn.Parameter(torch.empty_like(head.weight))
        if stage == "full":
            model = _attach_lora(model, llm_config, lora)
    set_trainable(model, stage)
    return model


def _declares_untied_head(source: str, architecture: str | None) -> bool:
    """Whether the LLM's recorded shape or config.json says its output head is not tied."""
    if architecture:
        return known_architecture(architecture).get("tie_word_embeddings") is False
    local = Path(source) / "config.json"
    return local.is_file() and json.loads(local.read_text()).get("tie_word_embeddings") is False


def build_model(model_cfg: ModelConfig, lora: LoraSettings, stage: str, device: torch.device) -> AssembledModel:
    """Load and assemble the trainable model on ``device`` (see the module docstring)."""
    import torch
    from torch import nn
    from transformers import Blip2ForConditionalGeneration

    require_source(model_cfg.blip2, "model.blip2")
    require_source(model_cfg.llm, "model.llm")
    blip2_config = load_source_config(model_cfg.blip2)
    llm_config = load_source_config(model_cfg.llm)
    decoder_only = is_decoder_only(llm_config)
    llm_dtype = resolve_frozen_dtype(model_cfg.llm_dtype, device)
    vision_dtype = resolve_frozen_dtype(model_cfg.vision_dtype, device)

    processor = build_processor(model_cfg.blip2, model_cfg.llm, blip2_config.num_query_tokens, model_cfg.image_token)
    image_token_index = processor.tokenizer.convert_tokens_to_ids(model_cfg.image_token)

    llm = load_llm(model_cfg.llm, decoder_only, model_cfg.llm_quantization, llm_dtype, device,
                   model_cfg.double_quantization)
    if image_token_index >= llm.get_input_embeddings().num_embeddings:
        # mT5/BLOOM embedding tables are padded beyond the tokenizer, so this only happens for LLMs
        # without spare rows. The new row is never used: its embeddings are replaced by image features.
        llm.resize_token_embeddings(len(processor.tokenizer))
    config = compose_config(blip2_config, llm.config, image_token_index)

    # Build the shell on the meta device, then fill it: the vision side from the BLIP-2 checkpoint
    # (assign=True keeps the loaded tensors, no second copy) and the LLM object loaded above.
    with torch.device("meta"):
        model = Blip2ForConditionalGeneration(config)
    model.language_model = llm
    state = read_vision_side_state_dict(model_cfg.blip2)
    llm_width = _llm_hidden_size(llm.config)
    projection_weight = state.get("language_projection.weight")
    reuse_projection = projection_weight is not None and projection_weight.shape[0] == llm_width
    if not reuse_projection:
        # Different LLM width (BLOOMZ-7B: 4096 vs Flan-T5-XL 2048): a fresh projection, as in mBLIP.
        state.pop("language_projection.weight", None)
        state.pop("language_projection.bias", None)
        model.language_projection = nn.Linear(config.qformer_config.hidden_size, llm_width)
    expected = {k for k in model.state_dict() if k.startswith(VISION_SIDE_PREFIXES)}
    if not reuse_projection:
        expected -= {"language_projection.weight", "language_projection.bias"}
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"BLIP-2 checkpoint {model_cfg.blip2!r} does not match the model: missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})"
        )
    model.load_state_dict(state, strict=False, assign=True)
    still_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if still_meta:
        raise RuntimeError(f"parameters left without weights after loading: {still_meta[:5]}")

    # Frozen ViT in its own dtype (mBLIP: float32); trainable parts in float32 (autocast handles the matmuls).
    model.vision_model.to(device=device, dtype=vision_dtype)
    for module in (model.qformer, model.language_projection):
        module.to(device=device, dtype=torch.float32)
    model.query_tokens.data = model.query_tokens.data.to(device=device, dtype=torch.float32)
    model.vision_model.eval()

    use_checkpointing = model_cfg.gradient_checkpointing
    if use_checkpointing == "auto":
        use_checkpointing = device.type == "cuda"
    if model_cfg.llm_quantization != "none":
        from peft import prepare_model_for_kbit_training

        # k-bit preparation on the LLM only: casts its norms to float32 and enables checkpointing.
        model.language_model = prepare_model_for_kbit_training(
            model.language_model,
            use_gradient_checkpointing=bool(use_checkpointing),
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    if use_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    if stage == "full":
        model = _attach_lora(model, llm.config, lora)
    trainable = set_trainable(model, stage)
    log.info(
        "assembled %s + %s: projection %s, %d trainable tensors",
        model_cfg.blip2,
        model_cfg.llm,
        "reused" if reuse_projection else "re-initialised",
        len(trainable),
    )
    return AssembledModel(model, processor, decoder_only, image_token_index, trainable)


def unwrap_blip2(model):
    """The Blip2ForConditionalGeneration inside a peft wrapper (or the model itself)."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def count_parameters(model) -> dict[str, dict[str, int]]:
    """Total and trainable parameter counts per component (vision, qformer, ..., lora)."""
    counts = {c: {"total": 0, "trainable": 0} for c in COMPONENTS}
    for name, param in model.named_parameters():
        entry = counts[component_of(name)]
        entry["total"] += param.numel()
        if param.requires_grad:
            entry["trainable"] += param.numel()
    return counts


def format_parameter_table(counts: dict[str, dict[str, int]]) -> str:
    lines = [f"{'component':<14}{'total':>16}{'trainable':>16}"]
    for component, entry in counts.items():
        lines.append(f"{component:<14}{entry['total']:>16,}{entry['trainable']:>16,}")
    total = sum(e["total"] for e in counts.values())
    trainable = sum(e["trainable"] for e in counts.values())
    lines.append(f"{'all':<14}{total:>16,}{trainable:>16,}")
    lines.append(f"trainable: {trainable / 1e6:.1f}M of {total / 1e6:.1f}M ({100 * trainable / max(total, 1):.2f}%)")
    return "\n".join(lines)

"""Model assembly: what is loaded from where, what trains, placeholder consistency, offline shapes."""

from __future__ import annotations

import pytest
import torch

from model.build import build_meta_model, build_model, count_parameters
from model.config import LoraSettings, ModelConfig

CPU = torch.device("cpu")


def _assemble(tiny_dirs, llm="mt5", stage="full", **model_kwargs):
    cfg = ModelConfig(blip2=str(tiny_dirs["blip2"]), llm=str(tiny_dirs[llm]), **model_kwargs)
    return build_model(cfg, LoraSettings(), stage, CPU)


def _saved(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_vision_side_from_blip2_and_llm_from_its_own_checkpoint(tiny_dirs):
    assembled = _assemble(tiny_dirs)
    blip2 = _saved(tiny_dirs["blip2"])
    mt5 = _saved(tiny_dirs["mt5"])
    state = {k.removeprefix("base_model.model."): v for k, v in assembled.model.state_dict().items()}
    for key in ("vision_model.embeddings.patch_embedding.weight", "qformer.layernorm.weight", "query_tokens",
                "language_projection.weight"):
        assert torch.equal(state[key], blip2[key]), key
    # The LLM is the mT5, not BLIP-2's English T5 (whose weights have different shapes and values).
    llm_key = "language_model.encoder.block.0.layer.0.SelfAttention.q.base_layer.weight"
    assert torch.equal(state[llm_key], mt5["encoder.block.0.layer.0.SelfAttention.q.weight"])
    assert torch.equal(state["language_model.shared.weight"], mt5["shared.weight"])


def test_projection_reinitialised_when_llm_width_differs(tiny_dirs):
    assembled = _assemble(tiny_dirs, llm="bloom")
    blip2 = assembled.model.get_base_model()
    saved = _saved(tiny_dirs["blip2"])["language_projection.weight"]
    bloom_width = blip2.config.text_config.hidden_size
    assert assembled.decoder_only and bloom_width != saved.shape[0]
    assert blip2.language_projection.weight.shape == (bloom_width, saved.shape[1])
    assert blip2.language_projection.weight.requires_grad


def test_trainable_set_is_exactly_qformer_queries_projection_and_llm_lora(tiny_dirs):
    assembled = _assemble(tiny_dirs)
    counts = count_parameters(assembled.model)
    assert counts["vision"]["trainable"] == 0 and counts["llm"]["trainable"] == 0
    for component in ("qformer", "query_tokens", "projection", "lora"):
        assert counts[component]["trainable"] == counts[component]["total"] > 0
    lora_names = [n for n in assembled.trainable if ".lora_" in n]
    assert lora_names and all(".language_model." in n for n in lora_names)
    wanted = {"q", "k", "v", "o", "wi_0", "wi_1", "wo"}
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora_names} == wanted


def test_projection_stage_trains_only_the_projection(tiny_dirs):
    assembled = _assemble(tiny_dirs, stage="projection")
    counts = count_parameters(assembled.model)
    assert counts["lora"]["total"] == 0
    assert {c for c, e in counts.items() if e["trainable"]} == {"projection"}


def test_image_placeholder_agrees_between_tokenizer_processor_and_config(tiny_dirs):
    from PIL import Image

    for llm in ("mt5", "bloom"):
        assembled = _assemble(tiny_dirs, llm=llm)
        config = assembled.model.get_base_model().config
        tokenizer = assembled.processor.tokenizer
        assert config.image_token_index == tokenizer.convert_tokens_to_ids("<image>") == assembled.image_token_index
        assert assembled.processor.num_query_tokens == config.num_query_tokens
        enc = assembled.processor(images=[Image.new("RGB", (40, 30), "red")], text=["Caption the image."],
                                  return_tensors="pt")
        assert int((enc["input_ids"] == config.image_token_index).sum()) == config.num_query_tokens
        assert enc["pixel_values"].shape[-1] == config.vision_config.image_size


def test_quantisation_on_cpu_names_the_knob(tiny_dirs):
    with pytest.raises((ValueError, ImportError), match="llm_quantization"):
        _assemble(tiny_dirs, llm_quantization="8bit")


def test_mt0_xl_trainable_parameters_match_the_paper_offline():
    """Recorded mT0-XL / BLIP-2 shapes on the meta device: ~124M trainable (Q-Former ~105M,
    projection ~1.6M, LoRA ~17.7M; Geigle et al. 2024)."""
    cfg = ModelConfig(
        blip2="Salesforce/blip2-flan-t5-xl", llm="bigscience/mt0-xl",
        blip2_architecture="Salesforce/blip2-flan-t5-xl", llm_architecture="bigscience/mt0-xl",
    )
    counts = count_parameters(build_meta_model(cfg, LoraSettings()))
    trainable = sum(e["trainable"] for e in counts.values())
    assert abs(trainable - 124e6) / 124e6 < 0.03
    assert abs(counts["qformer"]["trainable"] - 105e6) / 105e6 < 0.03
    assert abs(counts["projection"]["trainable"] - 1.6e6) / 1.6e6 < 0.03
    assert abs(counts["lora"]["trainable"] - 17.7e6) / 17.7e6 < 0.03
    assert counts["vision"]["trainable"] == counts["llm"]["trainable"] == 0

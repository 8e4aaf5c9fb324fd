"""Architecture shapes of the published checkpoints, for building the model offline on the meta device.

`mblip model-info` must work without network and without weights, so the shapes of the checkpoints
the configs name are recorded here (taken from their published config.json files). Training never uses
these: it reads config.json from the hub id or local directory it loads weights from.
"""

from __future__ import annotations

from typing import Any

# EVA ViT-g/14 (39 layers, width 1408) + Q-Former (BERT-base sized, 12 layers, cross-attention every
# second layer) + 32 query tokens, as in BLIP-2 (Li et al. 2023) and reused by mBLIP.
BLIP2_FLAN_T5_XL: dict[str, Any] = {
    "vision_config": {
        "hidden_size": 1408,
        "intermediate_size": 6144,
        "num_hidden_layers": 39,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "qkv_bias": True,
    },
    "qformer_config": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "cross_attention_frequency": 2,
        "encoder_hidden_size": 1408,
        "vocab_size": 30522,
    },
    "num_query_tokens": 32,
    # Flan-T5-XL width: the projection is 768 -> 2048, reusable for mT0-XL.
    "text_config": {"model_type": "t5", "d_model": 2048},
}

# mT0-XL (mT5-XL fine-tuned on xP3): gated-GELU feed-forward, untied output embedding.
MT0_XL: dict[str, Any] = {
    "model_type": "mt5",
    "d_model": 2048,
    "d_ff": 5120,
    "d_kv": 64,
    "num_heads": 32,
    "num_layers": 24,
    "num_decoder_layers": 24,
    "vocab_size": 250112,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
}

# BLOOMZ-7b1: decoder-only, width 4096 (the BLIP-2 projection is re-initialised for it).
BLOOMZ_7B1: dict[str, Any] = {
    "model_type": "bloom",
    "hidden_size": 4096,
    "n_layer": 30,
    "n_head": 32,
    "vocab_size": 250880,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 3,
}

KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "Salesforce/blip2-flan-t5-xl": BLIP2_FLAN_T5_XL,
    "bigscience/mt0-xl": MT0_XL,
    "bigscience/bloomz-7b1": BLOOMZ_7B1,
}


def known_architecture(name: str) -> dict[str, Any]:
    try:
        return KNOWN_ARCHITECTURES[name]
    except KeyError:
        raise KeyError(
            f"no recorded architecture {name!r} (model.blip2_architecture / model.llm_architecture); "
            f"known: {', '.join(KNOWN_ARCHITECTURES)}. Set it to null to read config.json instead."
        ) from None

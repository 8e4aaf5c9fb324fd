"""A tiny random CLIP saved like a hub checkpoint, for tests, the web demo and the web benchmark: it
loads through ``pipeline.clip.load_clip`` exactly as the real weights do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def build_tiny_clip(out_dir: str | Path, texts: Sequence[str] = (), image_size: int = 32, width: int = 32,
                    seed: int = 0) -> Path:
    """A tiny random CLIP (2-layer towers, BPE tokenizer trained on ``texts``) saved like a hub checkpoint."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    specials = ["<|endoftext|>", "<|startoftext|>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(list(texts) + ["a photo of a red circle", "a blue square"],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False))
    eos, bos = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                            pad_token="<|endoftext|>", unk_token="<unk>", model_max_length=32).save_pretrained(out_dir)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=tok.get_vocab_size(), hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32,
                         eos_token_id=eos, bos_token_id=bos, pad_token_id=eos),
        vision_config=dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        projection_dim=width,
    )
    CLIPModel(config).save_pretrained(out_dir)
    CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
                       ).save_pretrained(out_dir)
    return out_dir

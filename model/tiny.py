"""Tiny real checkpoints built locally (no downloads), saved in the same layout as hub checkpoints.

Tests and the demo load them through the same hub-id-or-directory code path as the real models:
a tiny BLIP-2 (ViT + Q-Former + a small English T5 that is never loaded), a tiny mT5 and a tiny BLOOM,
each LLM with a small BPE tokenizer trained on the given texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pipeline.demo.data import CAPTION_TEMPLATES, COLOURS, SHAPES

# Special tokens in id order: T5 convention pad=0, eos=1, unk=2 (decoder start = pad); BLOOM uses bos.
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>", "<s>")
DEFAULT_CORPUS = (
    "a red circle on a white background",
    "a blue square",
    "a green triangle",
    "what colour is the shape? red",
    "what shape is it? circle",
    "Caption the image in German. ein roter Kreis",
    "Answer in French: quelle couleur? rouge",
)


def build_tokenizer(texts: Iterable[str], out_dir: Path, decoder_only: bool, vocab_size: int = 400) -> None:
    """Train a byte-fallback-free BPE tokenizer (Metaspace pre-tokenizer, like sentencepiece) and save it.

    Seq2seq tokenizers append ``</s>`` (like T5); decoder-only ones add nothing (like BLOOM).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tokenizer.train_from_iterator(list(texts) + list(DEFAULT_CORPUS), trainer=trainer)
    if not decoder_only:
        tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>" if decoder_only else None,
    )
    wrapped.save_pretrained(out_dir)


def build_tiny_blip2(out_dir: Path, image_size: int = 32, text_width: int = 64, seed: int = 0,
                     patch_size: int = 8) -> Path:
    """A tiny BLIP-2 checkpoint (random weights) with a T5 text model of width ``text_width``."""
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration, BlipImageProcessor, T5Config

    torch.manual_seed(seed)
    config = Blip2Config(
        vision_config=dict(
            hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            image_size=image_size, patch_size=patch_size,
            # BLIP-2's default (1e-10) suits loading pretrained EVA weights; a random frozen ViT with
            # such weights would erase the image, so use a BERT-like std.
            initializer_range=0.02,
        ),
        qformer_config=dict(
            hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
            cross_attention_frequency=1, vocab_size=100, max_position_embeddings=64,
        ),
        text_config=T5Config(
            vocab_size=128, d_model=text_width, d_ff=96, d_kv=16, num_heads=4, num_layers=1,
            num_decoder_layers=1, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        ).to_dict(),
        num_query_tokens=8,
    )
    model = Blip2ForConditionalGeneration(config)
    model.save_pretrained(out_dir)
    BlipImageProcessor(
        size={"height": image_size, "width": image_size},
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
    ).save_pretrained(out_dir)
    return Path(out_dir)


def build_tiny_mt5(out_dir: Path, texts: Iterable[str] = (), width: int = 64, seed: int = 0) -> Path:
    """A tiny mT5 (random weights, gated-GELU, untied head) plus tokenizer."""
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration

    build_tokenizer(texts, out_dir, decoder_only=False)
    torch.manual_seed(seed)
    config = MT5Config(
        vocab_size=512, d_model=width, d_ff=128, d_kv=16, num_heads=4, num_layers=2, num_decoder_layers=2,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        # No dropout (mT5's default is 0.1; the tiny BLOOM has none either). The frozen LLM runs in
        # training mode, so its dropout stays on, and in a 64-wide model 10% dropout on the image
        # embeddings and on every residual branch drowns the small gradient through which the
        # Q-Former learns features that are not already linear in the ViT output. Demo eval, held-out
        # shape accuracy (chance 0.33): 0.36 with dropout even after 3000 steps, 0.62 without it at
        # 1200 steps; colour reaches 1.0 either way (numbers at the defaults: model/demo/eval_model.py).
        dropout_rate=0.0,
    )
    model = MT5ForConditionalGeneration(config)
    with torch.no_grad():
        # Random T5-style init (std 1 on the head) gives logits of std ~sqrt(width) and a start loss
        # far above log(vocab), so the head is scaled down. Not all the way to width**-0.5: the head is
        # frozen and the final RMSNorm fixes |h| ~ sqrt(width), so a head row of norm r caps a logit at
        # r * sqrt(width). At width**-0.5 (r ~ 1, cap ~8) the model cannot put more than ~0.1 on each of
        # three candidate answers while it is still unsure between them (shape: measured 0.11/0.07/0.06),
        # and the Q-Former never gets the signal to tell them apart. width**-0.25 (r ~ 2.8, start logit
        # std ~2.8) leaves room for that.
        model.lm_head.weight.mul_(width**-0.25)
    model.save_pretrained(out_dir)
    return Path(out_dir)


def build_tiny_bloom(out_dir: Path, texts: Iterable[str] = (), width: int = 64, seed: int = 0) -> Path:
    """A tiny BLOOM (random weights) plus tokenizer."""
    import torch
    from transformers import BloomConfig, BloomForCausalLM

    build_tokenizer(texts, out_dir, decoder_only=True)
    torch.manual_seed(seed)
    config = BloomConfig(
        vocab_size=512, hidden_size=width, n_layer=2, n_head=4, bos_token_id=3, eos_token_id=1, pad_token_id=0,
    )
    BloomForCausalLM(config).save_pretrained(out_dir)
    return Path(out_dir)


def main(argv: list[str] | None = None) -> None:
    """``python -m model.tiny runs/tiny``: the tiny checkpoints ``model/demo/train_tiny.yaml`` points at."""
    import argparse

    parser = argparse.ArgumentParser(description="Build tiny random BLIP-2, mT5 and BLOOM checkpoints.")
    parser.add_argument("out", nargs="?", default="runs/tiny")
    args = parser.parse_args(argv)
    out = Path(args.out)

    texts = [t.format(c=c, s=s, size="small", where="top left")
             for t in CAPTION_TEMPLATES for c in COLOURS for s in SHAPES]
    texts += [f"What color is the {s}?" for s in SHAPES] + ["What shape is shown in the image?", "yes", "no"]
    build_tiny_blip2(out / "blip2")
    build_tiny_mt5(out / "mt5", texts)
    build_tiny_bloom(out / "bloom", texts)
    print(out)


if __name__ == "__main__":
    main()

"""Build NLLB-architecture (M2M100) checkpoints locally: a sentencepiece vocabulary with NLLB's
language-code tokens, and a randomly initialised model of any size.

The result is a Hugging Face directory laid out like ``facebook/nllb-200-*`` (config, weights,
tokenizer and ``sentencepiece.bpe.model``), so it goes through exactly the same converter and runtime
path as the real NLLB checkpoints. Tests use tiny ones; the speed benchmark uses the real 600M shape.

Vocabulary layout follows NLLB/fairseq: ``<s> <pad> </s> <unk>`` at ids 0-3, then the sentencepiece
pieces (sentencepiece id ``i`` maps to ``i + 1``, the fairseq offset), then the 202 language codes,
then ``<mask>``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.nllb.convert import SPM_FILENAME, convert_nllb

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")


@dataclass(frozen=True)
class NllbShape:
    """Transformer shape of an M2M100/NLLB model. Defaults are a tiny test model."""

    d_model: int = 32
    encoder_layers: int = 2
    decoder_layers: int = 2
    attention_heads: int = 4
    ffn_dim: int = 64
    max_position_embeddings: int = 256
    vocab_size: int | None = None  # None: exactly the tokenizer's size; larger pads with made-up words
    dropout: float = 0.1


# facebook/nllb-200-distilled-600M and -1.3B (config.json of the published checkpoints).
NLLB_600M_SHAPE = NllbShape(
    d_model=1024, encoder_layers=12, decoder_layers=12, attention_heads=16, ffn_dim=4096,
    max_position_embeddings=1024, vocab_size=256206,
)
NLLB_1_3B_SHAPE = NllbShape(
    d_model=1024, encoder_layers=24, decoder_layers=24, attention_heads=16, ffn_dim=8192,
    max_position_embeddings=1024, vocab_size=256206,
)


def train_sentencepiece(
    texts: Iterable[str], model_prefix: str | Path, vocab_size: int, model_type: str = "unigram"
) -> Path:
    """Train a sentencepiece model on ``texts``; returns the ``.model`` path.

    Character coverage 1.0 so every script in the corpus survives; ids 0-2 are unk/s/</s> as in NLLB's
    own model (the fairseq offset is applied when the vocabulary is built).
    """
    import sentencepiece as spm

    model_prefix = Path(model_prefix)
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)),
        model_prefix=str(model_prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=2,
        minloglevel=2,
        hard_vocab_limit=False,  # small corpora: take as many pieces as the text supports
    )
    return model_prefix.with_suffix(".model")


def nllb_vocabulary(spm_path: str | Path) -> dict[str, int]:
    """Token -> id for the pieces part of an NLLB vocabulary (specials + sentencepiece pieces)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for piece_id in range(sp.get_piece_size()):
        if sp.is_unknown(piece_id) or sp.is_control(piece_id):
            continue  # <unk>, <s>, </s> are already the fairseq specials
        vocab.setdefault(sp.id_to_piece(piece_id), piece_id + 1)
    return vocab


def save_nllb_tokenizer(spm_path: str | Path, out_dir: str | Path):
    """Save an ``NllbTokenizer`` over ``spm_path`` (plus the spm file itself) into ``out_dir``."""
    from transformers import NllbTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = NllbTokenizer(vocab=nllb_vocabulary(spm_path), merges=[])
    tokenizer.save_pretrained(out_dir)
    shutil.copyfile(spm_path, out_dir / SPM_FILENAME)
    return tokenizer


def build_random_nllb(
    out_dir: str | Path, spm_path: str | Path, shape: NllbShape = NllbShape(), seed: int = 0
) -> Path:
    """Write a randomly initialised NLLB-architecture checkpoint (HF format) to ``out_dir``."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    out_dir = Path(out_dir)
    tokenizer = save_nllb_tokenizer(spm_path, out_dir)
    vocab_size = max(len(tokenizer), shape.vocab_size or 0)
    config = M2M100Config(
        vocab_size=vocab_size,
        d_model=shape.d_model,
        encoder_layers=shape.encoder_layers,
        decoder_layers=shape.decoder_layers,
        encoder_attention_heads=shape.attention_heads,
        decoder_attention_heads=shape.attention_heads,
        encoder_ffn_dim=shape.ffn_dim,
        decoder_ffn_dim=shape.ffn_dim,
        max_position_embeddings=shape.max_position_embeddings,
        dropout=shape.dropout,
        activation_function="relu",
        scale_embedding=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,  # NLLB starts decoding from </s>
        tokenizer_class="NllbTokenizer",
    )
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config)
    model.save_pretrained(out_dir)
    return out_dir


def build_tiny_random_model(
    out_dir: str | Path, texts: Iterable[str], vocab_size: int = 300, shape: NllbShape = NllbShape(), seed: int = 0,
    quantization: str = "int8",
) -> Path:
    """Train a sentencepiece model on ``texts``, build a random NLLB-shaped model, convert it to CT2.

    Returns the converted directory (``out_dir/ct2``). Its translations are noise: it exists to
    exercise the real code path (tokeniser, converter, engine) without any download.
    """
    out_dir = Path(out_dir)
    ct2_dir = out_dir / "ct2"
    if (ct2_dir / "model.bin").exists():
        return ct2_dir
    spm_path = train_sentencepiece(texts, out_dir / "spm" / "spm", vocab_size)
    hf_dir = build_random_nllb(out_dir / "hf", spm_path, shape=shape, seed=seed)
    return convert_nllb(str(hf_dir), ct2_dir, quantization=quantization)

"""Throughput and memory check on a GPU: the real-shaped mT0-XL model with random weights.

Writes random-weight checkpoints with the recorded shapes (BLIP-2 Flan-T5-XL vision side: EVA ViT-g
39x1408 + Q-Former 12x768 with 32 queries; mT0-XL: d_model 2048, 24+24 layers, d_ff 5120, vocab
250112) to a temporary directory, then trains a few steps through the normal path (``model.train``):
LLM loaded in 8-bit (bitsandbytes), LoRA, bf16 autocast, gradient checkpointing, batch 8 of demo
scenes at 224 px and prompts/targets padded up to the 128-token budget. Prints one summary line:
samples/s (after warm-up) and peak GPU memory.

    python -m dev.gpu_check               # needs CUDA and bitsandbytes (pip install 'mblip-pipeline[gpu]')
    python -m dev.gpu_check --tiny        # tiny models on CPU: exercises the same script end to end
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from model.architectures import BLIP2_FLAN_T5_XL, MT0_XL
from model.config import load_config
from model.demo.trainer import kept_shard_entry, write_english_demo_output
from model.tiny import build_tiny_blip2, build_tiny_mt5, build_tokenizer
from model.train import train
from pipeline.demo.data import generate_demo_data

MT0XL_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "train_mt0xl.yaml"
LONG_TEXT = " ".join(["a red circle on a plain background near the top left of the picture"] * 12)


def write_random_checkpoints(root: Path, tiny: bool) -> tuple[Path, Path]:
    """BLIP-2 (vision side, with a 1-layer 2048-wide T5 stand-in that is never loaded) and mT0-XL."""
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        BlipImageProcessor,
        MT5Config,
        MT5ForConditionalGeneration,
    )

    if tiny:
        return build_tiny_blip2(root / "blip2"), build_tiny_mt5(root / "mt5", texts=[LONG_TEXT])
    device = torch.device("cuda")
    with device:
        spec = dict(BLIP2_FLAN_T5_XL)
        spec["text_config"] = {"model_type": "t5", "d_model": 2048, "num_layers": 1, "num_decoder_layers": 1,
                               "d_ff": 64, "num_heads": 2, "d_kv": 16, "vocab_size": 32}
        blip2 = Blip2ForConditionalGeneration(Blip2Config(**spec)).to(torch.bfloat16)
    blip2.save_pretrained(root / "blip2")
    del blip2
    BlipImageProcessor(size={"height": 224, "width": 224}).save_pretrained(root / "blip2")
    config = dict(MT0_XL)
    config.pop("model_type")
    with device:
        llm = MT5ForConditionalGeneration(MT5Config(**config)).to(torch.bfloat16)
    llm.save_pretrained(root / "mt5")
    del llm
    torch.cuda.empty_cache()
    build_tokenizer([LONG_TEXT], root / "mt5", decoder_only=False, vocab_size=400)
    return root / "blip2", root / "mt5"


def run(tiny: bool, steps: int, batch_size: int, work: Path) -> dict:
    import torch

    start = time.perf_counter()
    blip2_dir, llm_dir = write_random_checkpoints(work / "models", tiny)
    generate_demo_data(work / "demo", n_images=max(16, batch_size * 2), seed=0)
    write_english_demo_output(work / "demo", work / "data")
    # Long captions make every target fill the 128-token budget: a worst-case sequence length.
    overrides = {
        "model": {"blip2": str(blip2_dir), "llm": str(llm_dir), "blip2_architecture": None, "llm_architecture": None},
        "data": {"manifest": str(work / "data"), "tasks": ["caption"], "val_fraction": 0.0, "val_rows": 0,
                 "num_workers": 2},
        "train": {"output_dir": str(work / "run"), "max_steps": steps, "batch_size": batch_size,
                  "global_batch": batch_size,
                  "log_every": 1, "eval_every": 0, "save_every": 0, "resume": False},
        "optim": {"warmup_steps": 1},
    }
    if tiny:
        overrides["model"] |= {"llm_quantization": "none", "gradient_checkpointing": False}
    cfg = load_config(MT0XL_CONFIG, overrides)
    _lengthen_captions(work / "data")
    setup_s = time.perf_counter() - start
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = train(cfg)
    metrics = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = [m["samples_per_s"] for m in metrics if "samples_per_s" in m]
    warm = rates[len(rates) // 2 :] or rates  # skip the first half: allocation, cuDNN/cuBLAS warm-up
    return {
        "model": "tiny (CPU)" if tiny else "mT0-XL + BLIP-2 ViT-g, random weights, 8-bit LLM",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "batch_size": batch_size,
        "steps": steps,
        "samples_per_s": sum(warm) / len(warm),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0,
        "loss_first": result.losses[0],
        "loss_last": result.losses[-1],
        "setup_s": round(setup_s, 1),
    }


def _lengthen_captions(data_dir: Path) -> None:
    """Every target made ``LONG_TEXT``; the manifest's entry of the rewritten shard follows (bytes, sha256)."""
    import polars as pl

    rel = "data/en/part-00000.parquet"
    frame = pl.read_parquet(data_dir / rel).with_columns(text_tgt=pl.lit(LONG_TEXT))
    frame.write_parquet(data_dir / rel)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    manifest["files"] = [kept_shard_entry(data_dir, rel, "en", frame.height) if f["path"] == rel else f
                         for f in manifest["files"]]
    (data_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random models on CPU (tests the script)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 20, tiny 4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--work-dir", default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    steps = args.steps or (4 if args.tiny else 20)
    with tempfile.TemporaryDirectory(prefix="mblip-gpu-check-") as tmp:
        report = run(args.tiny, steps, args.batch_size, Path(args.work_dir or tmp))
    print(
        f"gpu_check: {report['model']} on {report['device']}, batch {report['batch_size']}, {report['steps']} steps: "
        f"{report['samples_per_s']:.2f} samples/s, peak GPU memory {report['peak_gpu_memory_gib']:.2f} GiB, "
        f"loss {report['loss_first']:.3f} -> {report['loss_last']:.3f} (setup {report['setup_s']}s)"
    )


if __name__ == "__main__":
    main()

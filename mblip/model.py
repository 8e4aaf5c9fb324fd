"""Trainer commands: train, export-model, caption, ask, model-info."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_train(args: argparse.Namespace) -> int:
    import json

    from model.launch import launch_training

    summary = launch_training(args.config, args.gpus, args.manifest, args.output_dir, args.max_steps, args.stop_after)
    print(json.dumps(summary, indent=2))
    return 0

def _cmd_export(args: argparse.Namespace) -> int:
    from model.export import export_checkpoint

    print(export_checkpoint(args.checkpoint, args.out, dtype=args.dtype, device=args.device))
    return 0

def _generation(args: argparse.Namespace, task: str):
    from model.infer import generation_settings

    return generation_settings(task, num_beams=args.beams, max_new_tokens=args.max_new_tokens,
                               min_new_tokens=args.min_new_tokens, length_penalty=args.length_penalty)

def _cmd_caption(args: argparse.Namespace) -> int:
    from model.infer import caption

    print(caption(args.image, args.lang, args.model, _generation(args, "caption"), device=args.device))
    return 0

def _cmd_ask(args: argparse.Namespace) -> int:
    from model.infer import ask

    print(ask(args.image, args.question, args.lang, args.model, _generation(args, "answer"), device=args.device))
    return 0

def _cmd_model_info(args: argparse.Namespace) -> int:
    from model.build import build_meta_model, count_parameters, format_parameter_table
    from model.config import describe_batch, load_config

    cfg = load_config(args.config)
    batch = describe_batch(cfg.train, args.gpus)
    model = build_meta_model(cfg.model, cfg.lora, cfg.train.stage)
    print(f"{cfg.model.blip2} + {cfg.model.llm} (stage {cfg.train.stage}, meta device: no weights)")
    print(format_parameter_table(count_parameters(model)))
    print(batch)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train the re-alignment (Q-Former, projection, LoRA) from a YAML config")
    p.add_argument("config", type=Path, help="e.g. configs/train_mt0xl.yaml")
    p.add_argument("--manifest", default=None, help="data pipeline output directory (overrides data.manifest)")
    p.add_argument("--output-dir", default=None, help="overrides train.output_dir")
    p.add_argument("--max-steps", type=int, default=None, help="overrides train.max_steps")
    p.add_argument("--stop-after", type=int, default=None, help="halt with a checkpoint after this many steps")
    p.add_argument("--gpus", type=int, default=1, help="processes (GPUs); > 1 runs `accelerate launch`")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("export-model", help="merge LoRA into a training checkpoint; "
                                             "save a plain Blip2ForConditionalGeneration + processor")
    p.add_argument("checkpoint", type=Path, help="a checkpoints/step-* directory of a training run")
    p.add_argument("out", type=Path)
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_export)

    for name, text in (("caption", "caption an image"), ("ask", "answer a question about an image")):
        p = sub.add_parser(name, help=f"{text} with an exported model (beam search)")
        p.add_argument("image", type=Path)
        if name == "ask":
            p.add_argument("question")
        p.add_argument("--lang", default="en", help="language code of the output, e.g. de")
        p.add_argument("--model", required=True, help="exported model directory (mblip export-model)")
        limits = "5, 50, 1, 1" if name == "caption" else "5, 10, 1, -1"
        p.add_argument("--beams", type=int, default=None, help=f"beam width (defaults, mBLIP: beams, max, min, "
                       f"length penalty = {limits})")
        p.add_argument("--max-new-tokens", type=int, default=None)
        p.add_argument("--min-new-tokens", type=int, default=None)
        p.add_argument("--length-penalty", type=float, default=None, help="< 0 favours shorter outputs")
        p.add_argument("--device", default="cpu")
        p.set_defaults(func=_cmd_caption if name == "caption" else _cmd_ask)

    p = sub.add_parser("model-info", help="parameter counts per component, built on the meta device (no weights)")
    p.add_argument("config", type=Path)
    p.add_argument("--gpus", type=int, default=1, help="processes: the effective batch line shows the accumulation")
    p.set_defaults(func=_cmd_model_info)

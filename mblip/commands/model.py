"""Handlers of the model commands (parsers: ``mblip.model``): each runs one command from its parsed arguments."""

from __future__ import annotations

import argparse

from model.build import build_meta_model, count_parameters, format_parameter_table
from model.config import describe_batch, load_config
from model.evaluate.paper import load_paper_file
from model.evaluate.runner import format_table
from model.export import export_checkpoint
from model.finetune.run import run_finetune
from model.infer import ask, caption, generation_settings
from model.launch import launch_training
from model.model_card import read_eval_results


def cmd_train(args: argparse.Namespace) -> int:
    import json

    summary = launch_training(args.config, args.gpus, args.manifest, args.output_dir, args.max_steps, args.stop_after,
                              accelerate_config=args.accelerate_config)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    import json

    result = run_finetune(args.config, args.checkpoint, args.output_dir, args.max_steps, args.stop_after, args.gpus,
                          args.accelerate_config, evaluate=not args.no_eval, progress=not args.no_progress)
    scores = result.pop("eval", None)
    print(json.dumps(result, indent=2))
    if scores is not None:
        print(format_table(scores))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    print(export_checkpoint(args.checkpoint, args.out, dtype=args.dtype, device=args.device,
                            eval_results=read_eval_results(args.eval), license=args.license, datasets=args.datasets,
                            name=args.name, paper=load_paper_file(args.paper) if args.paper else None))
    return 0


def _generation(args: argparse.Namespace, task: str):
    return generation_settings(task, num_beams=args.beams, max_new_tokens=args.max_new_tokens,
                               min_new_tokens=args.min_new_tokens, length_penalty=args.length_penalty)


def cmd_caption(args: argparse.Namespace) -> int:
    print(caption(args.image, args.lang, args.model, _generation(args, "caption"), device=args.device))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    print(ask(args.image, args.question, args.lang, args.model, _generation(args, "answer"), device=args.device))
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    batch = describe_batch(cfg.train, args.gpus)
    model = build_meta_model(cfg.model, cfg.lora, cfg.train.stage)
    print(f"{cfg.model.blip2} + {cfg.model.llm} (stage {cfg.train.stage}, meta device: no weights)")
    print(format_parameter_table(count_parameters(model)))
    print(batch)
    return 0

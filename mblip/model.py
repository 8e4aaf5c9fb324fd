"""Trainer commands: train, finetune, export-model, caption, ask, model-info."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="train the re-alignment (Q-Former, projection, LoRA) from a YAML config")
    p.add_argument("config", type=Path, help="e.g. configs/train_mt0xl.yaml")
    p.add_argument("--manifest", default=None, help="data pipeline output directory (overrides data.manifest)")
    p.add_argument("--output-dir", default=None, help="overrides train.output_dir")
    p.add_argument("--max-steps", type=int, default=None, help="overrides train.max_steps")
    p.add_argument("--stop-after", type=int, default=None, help="halt with a checkpoint after this many steps")
    p.add_argument("--gpus", type=int, default=1, help="processes (GPUs); > 1 runs `accelerate launch`")
    p.add_argument("--accelerate-config", type=Path, default=None,
                   help="an `accelerate config` file (multi-node, FSDP, DeepSpeed): `accelerate launch --config_file` "
                        "with it instead of the one-machine multi-GPU flags")
    p.set_defaults(handler="model:cmd_train")

    p = sub.add_parser("finetune", help="fine-tune a re-aligned checkpoint on one task's English training data, then "
                                        "evaluate it zero-shot on the matching benchmark (configs/finetune/*.yaml)")
    p.add_argument("config", type=Path, help="e.g. configs/finetune/xgqa.yaml")
    p.add_argument("--checkpoint", default=None, help="the re-aligned checkpoint to start from (checkpoints/step-N or "
                                                      "a training output); overrides finetune.checkpoint")
    p.add_argument("--output-dir", default=None, help="overrides train.output_dir")
    p.add_argument("--max-steps", type=int, default=None, help="overrides train.max_steps")
    p.add_argument("--stop-after", type=int, default=None,
                   help="halt with a checkpoint after this many steps (no evaluation; rerun to resume)")
    p.add_argument("--gpus", type=int, default=1, help="processes (GPUs); > 1 runs `accelerate launch`")
    p.add_argument("--accelerate-config", type=Path, default=None, help="an `accelerate config` file (as mblip train)")
    p.add_argument("--no-eval", action="store_true", help="train only (evaluate later with mblip eval)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar during the evaluation")
    p.set_defaults(handler="model:cmd_finetune")

    p = sub.add_parser("export-model", help="merge LoRA into a training checkpoint; "
                                             "save a plain Blip2ForConditionalGeneration + processor")
    p.add_argument("checkpoint", type=Path, help="a checkpoints/step-* directory of a training run")
    p.add_argument("out", type=Path)
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--eval", nargs="*", default=[], metavar="RESULT.json",
                   help="`mblip eval --out` files: their scores go into the model card's evaluation table")
    p.add_argument("--paper", type=Path, default=None, metavar="FILE",
                   help="the paper's numbers beside the scores in that table (format: `mblip eval-report --paper`)")
    p.add_argument("--license", default="other", help="the model card's license (a Hub licence id; the base "
                                                      "models' and training data's licences apply)")
    p.add_argument("--datasets", nargs="*", default=[], help="Hub ids of the training data (e.g. after `mblip push`)")
    p.add_argument("--name", default=None, help="the model card's title (default: the training run's folder name)")
    p.set_defaults(handler="model:cmd_export")

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
        p.set_defaults(handler="model:cmd_caption" if name == "caption" else "model:cmd_ask")

    p = sub.add_parser("model-info", help="parameter counts per component, built on the meta device (no weights)")
    p.add_argument("config", type=Path)
    p.add_argument("--gpus", type=int, default=1, help="processes: the effective batch line shows the accumulation")
    p.set_defaults(handler="model:cmd_model_info")

"""``mblip``: the command-line entry point. Each subcommand is a small function with lazy imports,
so ``mblip --help`` starts fast and a missing optional dependency names what to install."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"


def _cmd_languages(args: argparse.Namespace) -> int:
    from pipeline.languages import load_languages

    print(f"{'code':<5} {'nllb':<9} {'script':<6} {'mC4 %':>9}  name")
    for lang in load_languages():
        print(f"{lang.code:<5} {lang.nllb:<9} {lang.script:<6} {lang.mc4_share_pct:>9.4f}  {lang.name}")
    return 0


def _cmd_convert_nllb(args: argparse.Namespace) -> int:
    from pipeline.nllb.convert import convert_nllb

    out = convert_nllb(args.model, args.out, quantization=args.quantization, revision=args.revision, force=args.force)
    print(out)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from flows.generate import generate

    from pipeline.config import load_config
    from pipeline.summary import print_summary

    manifest = generate(str(args.config), out_dir=str(args.out) if args.out else None)
    out = Path(args.out) if args.out else Path(load_config(args.config).output.dir)
    print_summary(out, manifest)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from pipeline.demo_data import generate_demo_data

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    generate_demo_data(out / "demo-data", n_images=args.images, seed=0)
    config_path = out / "demo.yaml"
    shutil.copyfile(DEMO_CONFIG, config_path)
    note = None
    try:
        from pipeline.nllb.shipped import shipped_model_dir

        shipped_model_dir()
    except (ImportError, FileNotFoundError):
        note = _use_tiny_random_model(out, config_path)
    from flows.generate import generate
    from pipeline.summary import print_summary

    manifest = generate(str(config_path))
    print_summary(out / "dataset", manifest, note=note)
    return 0


def _use_tiny_random_model(out: Path, config_path: Path) -> str:
    """Without a shipped model, point the demo config at a tiny random-weight NLLB built locally."""
    import yaml

    from pipeline.demo_data import CAPTION_TEMPLATES
    from pipeline.nllb.build import build_tiny_random_model

    texts = [t.format(c="red", s="circle", size="small", where="top left") for t in CAPTION_TEMPLATES]
    texts += ["What color is the square?", "What shape is shown in the image?", "Is the triangle blue?"]
    model_dir = build_tiny_random_model(out / "models" / "tiny-random", texts * 20, vocab_size=120)
    config = yaml.safe_load(config_path.read_text())
    config.setdefault("translation", {})["model"] = str(model_dir)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return ("NOTE: no trained translation model is installed, so this demo used a tiny RANDOM-weight "
            "NLLB-shaped model: its translations are noise and the filter rejects them.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mblip", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("languages", help="print the 96-language table")
    p.set_defaults(func=_cmd_languages)

    p = sub.add_parser("convert-nllb", help="convert an NLLB checkpoint (hub id or directory) to CTranslate2")
    p.add_argument("model", help="Hugging Face id (e.g. facebook/nllb-200-distilled-600M) or local directory")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--quantization", default="int8",
                   help="int8 | int8_float16 | int8_bfloat16 | int8_float32 | float16 | bfloat16 | float32")
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    p.add_argument("--force", action="store_true", help="convert even if an up-to-date conversion exists")
    p.set_defaults(func=_cmd_convert_nllb)

    p = sub.add_parser("generate", help="build a dataset from a YAML config (Prefect flow)")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, default=None, help="output directory (overrides output.dir)")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("demo", help="generate demo data and run the whole pipeline on it")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--images", type=int, default=200, help="number of demo images (5 captions + 3 questions each)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Translation-model commands: convert-nllb, translate, eval-mt, score, eval-filter."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def _cmd_convert_nllb(args: argparse.Namespace) -> int:
    from pipeline.nllb.convert import convert_nllb

    languages = tuple(c.strip() for c in args.languages.split(",") if c.strip()) if args.languages else None
    out = convert_nllb(args.model, args.out, quantization=args.quantization, revision=args.revision, force=args.force,
                       languages=languages)
    print(out)
    return 0

def _filter_translator(args: argparse.Namespace):
    """(translator, languages it covers) for `score`/`eval-filter`: --model (all languages), else the
    shipped model (de/fr/cs only); (None, None) with --no-backtranslation."""
    if args.no_backtranslation:
        return None, None
    from pipeline.nllb.engine import load_translator

    if args.model:
        return load_translator(args.model), None
    try:
        from pipeline.languages import SOURCE_NLLB
        from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir

        both_ways = ({t for s, t in SHIPPED_DIRECTIONS if s == SOURCE_NLLB}
                     & {s for s, t in SHIPPED_DIRECTIONS if t == SOURCE_NLLB})
        return load_translator(shipped_model_dir()), frozenset(both_ways)
    except (ImportError, FileNotFoundError) as e:
        raise FileNotFoundError(
            f"no shipped translation model in this install ({e}); pass --model DIR (a converted NLLB, "
            "see `mblip convert-nllb`) or --no-backtranslation for the heuristic signals only"
        ) from e

def _cmd_score(args: argparse.Namespace) -> int:
    from pipeline.filters.rules import load_rules
    from pipeline.filters.score_pairs import score_pairs_file

    translator, languages = _filter_translator(args)
    rules = load_rules(args.rules, shipped_model=translator is not None and args.model is None)
    counts = score_pairs_file(args.pairs, args.out, translator, rules, model_languages=languages)
    total = sum(counts.values())
    print(f"scored {total} pairs -> {args.out}")
    for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<28} {n:>8}  {100 * n / max(total, 1):5.1f}%")
    return 0

def _cmd_eval_filter(args: argparse.Namespace) -> int:
    import json

    from pipeline.filters.evaluate import format_report, reason_breakdown, run_evaluation
    from pipeline.filters.rules import load_rules

    translator, languages = _filter_translator(args)
    rules = load_rules(args.rules, shipped_model=translator is not None and args.model is None)
    results, scored = run_evaluation(
        args.data, args.split, tuple(args.langs.split(",")), args.limit, args.seed, rules, translator, languages,
        args.reverse,
    )
    print(format_report(results))
    for name, frame in scored.items():
        wrong = reason_breakdown(frame, "human").drop_nulls("reject_reason")
        reasons = ", ".join(f"{r} {n}" for r, n in wrong.iter_rows())
        print(f"\n{name}: human translations rejected, by reason: " + reasons)
    if args.json:
        payload = {name: [vars(r) for r in rs] for name, rs in results.items()}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 0

def _cmd_translate(args: argparse.Namespace) -> int:
    from itertools import islice

    from pipeline.languages import get_language
    from pipeline.nllb.engine import EngineSettings, load_translator
    from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir

    src, tgt = get_language(args.src).nllb, get_language(args.tgt).nllb
    if args.model is None and (src, tgt) not in SHIPPED_DIRECTIONS:
        logging.getLogger("mblip").warning(
            "the shipped model was trained only on %s; %s->%s will not be a translation (pass --model)",
            ", ".join(f"{a}->{b}" for a, b in SHIPPED_DIRECTIONS), src, tgt,
        )
    settings = EngineSettings(device=args.device, beam_size=args.beam_size, intra_threads=args.threads)
    translator = load_translator(args.model or shipped_model_dir(), settings)
    stream = open(args.file, encoding="utf-8") if args.file else sys.stdin
    try:
        # Bounded chunks: memory stays flat on long inputs while CT2 still batches by tokens.
        while lines := [line.rstrip("\n") for line in islice(stream, args.chunk_lines)]:
            for t in translator.translate(lines, src, tgt):
                print(t.text)
            sys.stdout.flush()
    finally:
        if args.file:
            stream.close()
    return 0

def _cmd_eval_mt(args: argparse.Namespace) -> int:
    from pathlib import Path as _Path

    from pipeline.nllb.engine import EngineSettings, load_translator
    from pipeline.nllb.evaluate import MULTI30K_DIRECTIONS, evaluate_directions, format_scores, scores_to_json
    from pipeline.nllb.shipped import shipped_model_dir, shipped_questions_val_dir, shipped_val_dir

    data, default_directions = args.data or shipped_val_dir(), MULTI30K_DIRECTIONS
    if str(args.data) == "xgqa":  # the shipped held-out xGQA questions, English <-> German
        data, default_directions = shipped_questions_val_dir(), (("en", "de"), ("de", "en"))
    directions = (tuple(tuple(d.split("-")) for d in args.directions.split(",")) if args.directions
                  else default_directions)
    translator = load_translator(args.model or shipped_model_dir(),
                                 EngineSettings(device=args.device, beam_size=args.beam_size))
    scores = evaluate_directions(translator, data, directions, args.split, args.limit)
    print(format_scores(scores))
    if args.json:
        _Path(args.json).write_text(scores_to_json(scores))
    return 0

def _add_filter_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="converted NLLB directory for back-translation (default: the shipped model)")
    p.add_argument("--no-backtranslation", action="store_true", help="heuristic signals only (no model)")
    p.add_argument("--rules", default=None,
                   help="filter rules YAML (default: built-in thresholds, see configs/filter.yaml)")


def add_parsers(sub) -> None:
    from pipeline.languages import SOURCE_NLLB

    p = sub.add_parser("convert-nllb", help="convert an NLLB checkpoint (hub id or directory) to CTranslate2")
    p.add_argument("model", help="Hugging Face id (e.g. facebook/nllb-200-distilled-600M) or local directory")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--quantization", default="int8",
                   help="int8 | int8_float16 | int8_bfloat16 | int8_float32 | float16 | bfloat16 | float32")
    p.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    p.add_argument("--force", action="store_true", help="convert even if an up-to-date conversion exists")
    p.add_argument("--languages", default=None,
                   help="comma-separated NLLB codes, for a model trained on only some languages (default: all)")
    p.set_defaults(func=_cmd_convert_nllb)

    p = sub.add_parser("score", help="score translation pairs (JSONL/Parquet src, tgt, lang) with every filter signal")
    p.add_argument("pairs", type=Path, help="JSON Lines or .parquet with src (English), tgt, lang (NLLB code)")
    p.add_argument("--out", type=Path, required=True, help="output JSON Lines (input order, signals, keep, reason)")
    _add_filter_model_args(p)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("eval-filter", help="filter recall per failure mode on corrupted multi30k human translations")
    p.add_argument("--data", type=Path, default=None,
                   help="multi30k directory (default: the shipped val copy; other splits need it)")
    p.add_argument("--split", default="val", help="val (report) or train (tune thresholds)")
    p.add_argument("--langs", default="de,fr,cs", help="comma-separated languages present in the data")
    p.add_argument("--limit", type=int, default=None, help="seeded sample of this many lines (default: all)")
    p.add_argument("--seed", type=int, default=0, help="sample and corruption seed")
    p.add_argument("--json", type=Path, default=None, help="also write the rates as JSON")
    p.add_argument("--reverse", default="decode", choices=["score", "decode", "both"],
                   help="model signals: decoded back-translation + chrF++ (default) or the reverse score")
    _add_filter_model_args(p)
    p.set_defaults(func=_cmd_eval_filter)

    p = sub.add_parser("translate", help="translate lines (file or stdin) to stdout with a converted NLLB model")
    p.add_argument("file", nargs="?", default=None, help="one sentence per line (default: stdin)")
    p.add_argument("--model", default=None, help="converted NLLB directory (default: the shipped Multi30k model)")
    p.add_argument("--src", default=SOURCE_NLLB, help=f"source language, NLLB or project code (default {SOURCE_NLLB})")
    p.add_argument("--tgt", required=True, help="target language, NLLB or project code, e.g. deu_Latn")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per batch (0 = CTranslate2 default)")
    p.add_argument("--chunk-lines", type=int, default=1000, help="lines read and translated at a time")
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("eval-mt", help="chrF++ and BLEU of a converted NLLB model on parallel data "
                                        "(default: shipped model, Multi30k val)")
    p.add_argument("--model", default=None, help="converted NLLB directory (default: the shipped Multi30k model)")
    p.add_argument("--data", type=Path, default=None,
                   help="directory with SPLIT.LANG(.gz) files (default: shipped Multi30k val); "
                   "`xgqa`: the shipped held-out xGQA questions (en-de, de-en)")
    p.add_argument("--split", default="val")
    p.add_argument("--directions", default=None,
                   help="comma-separated src-tgt project codes (default: en-de,en-fr,en-cs,de-en,fr-en,cs-en)")
    p.add_argument("--limit", type=int, default=None, help="first N lines per direction (default: all)")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")
    p.set_defaults(func=_cmd_eval_mt)

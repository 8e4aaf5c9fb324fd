"""Handlers of the mt commands (parsers: ``mblip.mt``): each runs one command from its parsed arguments."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline.filters.evaluate import format_report, reason_breakdown, run_evaluation
from pipeline.filters.rules import load_rules
from pipeline.filters.score_pairs import score_pairs_file
from pipeline.languages import SOURCE_NLLB, get_language
from pipeline.nllb.convert import convert_nllb
from pipeline.nllb.engine import EngineSettings, load_translator
from pipeline.nllb.evaluate import MULTI30K_DIRECTIONS, evaluate_directions, format_scores, scores_to_json
from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir, shipped_questions_val_dir, shipped_val_dir


def cmd_convert_nllb(args: argparse.Namespace) -> int:
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
    if args.model:
        return load_translator(args.model), None
    try:
        both_ways = ({t for s, t in SHIPPED_DIRECTIONS if s == SOURCE_NLLB}
                     & {s for s, t in SHIPPED_DIRECTIONS if t == SOURCE_NLLB})
        return load_translator(shipped_model_dir()), frozenset(both_ways)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"no shipped translation model in this install ({e}); pass --model DIR (a converted NLLB, "
            "see `mblip convert-nllb`) or --no-backtranslation for the heuristic signals only"
        ) from e


def cmd_score(args: argparse.Namespace) -> int:
    translator, languages = _filter_translator(args)
    rules = load_rules(args.rules, shipped_model=translator is not None and args.model is None)
    counts = score_pairs_file(args.pairs, args.out, translator, rules, model_languages=languages,
                              contrasts=args.contrasts)
    total = sum(counts.values())
    print(f"scored {total} pairs -> {args.out}")
    for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<28} {n:>8}  {100 * n / max(total, 1):5.1f}%")
    return 0


def cmd_eval_filter(args: argparse.Namespace) -> int:
    import json

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


def cmd_translate(args: argparse.Namespace) -> int:
    from itertools import islice

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


def cmd_eval_mt(args: argparse.Namespace) -> int:
    from pathlib import Path as _Path

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

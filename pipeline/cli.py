"""``mblip``: the command-line entry point. Each subcommand is a small function with lazy imports,
so ``mblip --help`` starts fast and a missing optional dependency names what to install."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"
DEMO_ALL_TASKS_CONFIG = REPO_ROOT / "configs" / "demo_all_tasks.yaml"


def _cmd_languages(args: argparse.Namespace) -> int:
    from pipeline.languages import load_languages

    print(f"{'code':<5} {'nllb':<9} {'script':<6} {'mC4 %':>9}  name")
    for lang in load_languages():
        print(f"{lang.code:<5} {lang.nllb:<9} {lang.script:<6} {lang.mc4_share_pct:>9.4f}  {lang.name}")
    return 0


def _cmd_convert_nllb(args: argparse.Namespace) -> int:
    from pipeline.nllb.convert import convert_nllb

    languages = tuple(c.strip() for c in args.languages.split(",") if c.strip()) if args.languages else None
    out = convert_nllb(args.model, args.out, quantization=args.quantization, revision=args.revision, force=args.force,
                       languages=languages)
    print(out)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from flows.generate import run_generate

    from pipeline.config import load_config
    from pipeline.summary import print_summary

    manifest = run_generate(str(args.config), out_dir=str(args.out) if args.out else None, show_progress=True,
                            dask_address=args.dask_address, workers=args.workers)
    out = Path(args.out) if args.out else Path(load_config(args.config).output.dir)
    print_summary(out, manifest)
    return 0


def _cmd_regenerate(args: argparse.Namespace) -> int:
    from flows.regenerate import run_regenerate

    from pipeline.summary import print_summary

    manifest = run_regenerate(
        str(args.out), dask_address=args.dask_address, workers=args.workers, languages=args.languages or None,
        sources=args.sources or None, model=args.model, min_bt_chrf=args.min_bt_chrf, reverse=args.reverse,
        config_path=str(args.config) if args.config else None, show_progress=True,
    )
    print_summary(Path(args.out), manifest)
    chunks = manifest.get("run", {}).get("chunks", {})
    print(f"\n  chunks: {chunks.get('done', 0)} reused, {chunks.get('redecide', 0)} re-decided from stored scores, "
          f"{chunks.get('rescore', 0)} rescored (no translation), {chunks.get('process', 0)} processed")
    return 0


def _add_runner_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="run chunk tasks on a local Dask cluster of N worker processes (default: threads here)")
    p.add_argument("--dask-address", default=None,
                   help="run chunk tasks on an existing Dask cluster, e.g. tcp://scheduler:8786")


def _cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from pipeline.demo_data import generate_demo_data

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    generate_demo_data(out / "demo-data", n_images=args.images, seed=0)
    config_path = out / "demo.yaml"
    if args.base_only:
        shutil.copyfile(DEMO_CONFIG, config_path)
    else:  # every task of the mix, each source in its official format
        from pipeline.demo_tasks import generate_task_demo_data

        generate_task_demo_data(out / "demo-data")
        shutil.copyfile(DEMO_ALL_TASKS_CONFIG, config_path)
    note = None
    try:
        from pipeline.nllb.shipped import shipped_model_dir

        shipped_model_dir()
    except (ImportError, FileNotFoundError):
        note = _use_tiny_random_model(out, config_path)
    if not args.no_web:
        from pipeline.web_demo import prepare_web_demo

        web_note = prepare_web_demo(out, config_path)
        note = "\n".join(n for n in (note, web_note) if n) or None
    from flows.generate import run_generate
    from pipeline.summary import print_summary

    manifest = run_generate(str(config_path), show_progress=True)
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


def _filter_translator(args: argparse.Namespace):
    """(translator, languages it covers) for `score`/`eval-filter`: --model (all languages), else the
    shipped model (de/fr/cs only); (None, None) with --no-backtranslation."""
    if args.no_backtranslation:
        return None, None
    from pipeline.nllb.engine import load_translator

    if args.model:
        return load_translator(args.model), None
    try:
        from pipeline.nllb.shipped import SHIPPED_DIRECTIONS, shipped_model_dir

        both_ways = {t for s, t in SHIPPED_DIRECTIONS if s == "eng_Latn"} & {s for s, t in SHIPPED_DIRECTIONS if t == "eng_Latn"}
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
        print(f"\n{name}: human translations rejected, by reason: " + ", ".join(f"{r} {n}" for r, n in wrong.iter_rows()))
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
    translator = load_translator(args.model or shipped_model_dir(), EngineSettings(device=args.device, beam_size=args.beam_size))
    scores = evaluate_directions(translator, data, directions, args.split, args.limit)
    print(format_scores(scores))
    if args.json:
        _Path(args.json).write_text(scores_to_json(scores))
    return 0


def _add_filter_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="converted NLLB directory for back-translation (default: the shipped model)")
    p.add_argument("--no-backtranslation", action="store_true", help="heuristic signals only (no model)")
    p.add_argument("--rules", default=None, help="filter rules YAML (default: built-in thresholds, see configs/filter.yaml)")


def _cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.verify import format_report, verify_output

    report = verify_output(args.out)
    print(format_report(report))
    return 0 if report.ok else 1


def _cmd_export_dataset(args: argparse.Namespace) -> int:
    from pipeline.export import export_dataset, prompt_source

    result = export_dataset(args.out, args.dest, formats=tuple(args.format), languages=tuple(args.languages),
                            prompts=prompt_source(args.prompts))
    for f in result["files"]:
        print(f"{f['format']:<8} {f['lang']:<5} {f['rows']:>9} rows  {f['path']}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "web":
        from pipeline.bench.web import run

        run(tuple(int(x) for x in args.sizes.split(",")), match_pool=args.match_pool, work=args.work)
        return 0
    if args.what in ("flow", "memory"):
        return _cmd_bench_orchestration(args)
    if args.what == "filter":
        from pipeline.bench.filter import bench_filter, print_report

        print_report(bench_filter(args.model, args.data, tuple(args.langs.split(",")), args.limit, args.repeats,
                                  args.rules, args.device, args.compute_type, args.threads or 0))
        return 0
    from pipeline.bench import translate as bench

    device = args.device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    common = dict(shape=args.shape, device=device, compute_type=args.compute_type, threads=args.threads,
                  batch_size=args.batch_size, cache_dir=args.cache_dir)
    if args.vmap:
        full, vmap, entries = bench.bench_vmap(shape=args.shape, sentences=args.sentences, output_tokens=args.tokens,
                                               vmap_entries=args.vmap_entries, device=device,
                                               compute_type=args.compute_type, threads=args.threads,
                                               repeats=args.repeats, cache_dir=args.cache_dir)
        bench.print_vmap_report(full, vmap, entries)
    elif args.stage:
        langs = tuple(x for x in args.languages.split(",") if x)
        bench.print_stage_report(bench.bench_stage(rows=args.rows, languages=langs, reference_rows=args.reference_rows,
                                                   **common))
    else:
        hf, ct2 = bench.bench_engine(sentences=args.sentences, output_tokens=args.tokens, repeats=args.repeats, **common)
        bench.print_engine_report(hf, ct2)
    return 0


def _cmd_bench_orchestration(args: argparse.Namespace) -> int:
    if args.what == "flow":
        from flows.bench.overhead import main as bench_flow

        return bench_flow(examples=args.examples, work=args.work, backtranslate=args.backtranslation, resume=args.resume,
                          repeats=args.repeats)
    from flows.bench.memory import main as bench_memory

    sizes = tuple(int(x) for x in args.sizes.split(","))
    return bench_memory(sizes=sizes, work=args.work, backtranslate=args.backtranslation)


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


def _add_model_commands(sub) -> None:
    p = sub.add_parser("train", help="train the re-alignment (Q-Former, projection, LoRA) from a YAML config")
    p.add_argument("config", type=Path, help="e.g. configs/train_mt0xl.yaml")
    p.add_argument("--manifest", default=None, help="data pipeline output directory (overrides data.manifest)")
    p.add_argument("--output-dir", default=None, help="overrides train.output_dir")
    p.add_argument("--max-steps", type=int, default=None, help="overrides train.max_steps")
    p.add_argument("--stop-after", type=int, default=None, help="halt with a checkpoint after this many steps")
    p.add_argument("--gpus", type=int, default=1, help="processes (GPUs); > 1 runs `accelerate launch`")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("export-model", help="merge LoRA into a training checkpoint; save a plain Blip2ForConditionalGeneration + processor")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mblip", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
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
    p.add_argument("--languages", default=None,
                   help="comma-separated NLLB codes, for a model trained on only some languages (default: all)")
    p.set_defaults(func=_cmd_convert_nllb)

    p = sub.add_parser("generate", help="build a dataset from a YAML config (Prefect flow)")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, default=None, help="output directory (overrides output.dir)")
    _add_runner_args(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("regenerate", help="update a finished dataset, redoing only what a change touches (Prefect flow)")
    p.add_argument("out", type=Path, help="output root of a finished run (holds config.resolved.yaml)")
    p.add_argument("--languages", nargs="*", default=[], help="recompute the rows of these languages in every chunk")
    p.add_argument("--sources", nargs="*", default=[], help="read these sources again and reprocess their chunks")
    p.add_argument("--model", default=None, help="new converted MT model directory (chunks are translated again)")
    p.add_argument("--min-bt-chrf", type=float, default=None,
                   help="new back-translation chrF++ threshold (re-decided from stored scores, nothing translated)")
    p.add_argument("--reverse", default=None, choices=["score", "decode", "both"],
                   help="filter's reverse check; outputs stored under another mode are rescored, not translated")
    p.add_argument("--config", type=Path, default=None, help="config to use instead of OUT/config.resolved.yaml")
    _add_runner_args(p)
    p.set_defaults(func=_cmd_regenerate)

    from pipeline.images.command import add_parser as add_fetch_images

    add_fetch_images(sub)

    p = sub.add_parser("demo", help="generate demo data and run the whole pipeline on it")
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--images", type=int, default=200, help="number of demo images (5 captions + 3 questions each)")
    p.add_argument("--no-web", action="store_true", help="skip the web captions and matching sources (fetch-images)")
    p.add_argument("--base-only", action="store_true", help="only COCO captions and VQAv2 (not every task of the mix)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("bench", help="benchmarks: `bench translate` (engine vs HF generate), `--stage` (whole stage)")
    p.add_argument("what", choices=["translate", "filter", "flow", "memory", "web"],
                   help="translate: engine; filter: translate+filter, back-translation vs reverse score; "
                        "flow: orchestration overhead; memory: peak RSS at two sizes; "
                        "web: noun-phrase sampling at two sizes (--sizes, captions), CLIP embedding + FAISS search")
    p.add_argument("--model", default=None, help="filter: converted NLLB directory (default: the shipped model)")
    p.add_argument("--data", type=Path, default=None, help="filter: multi30k directory (default: the shipped val copy)")
    p.add_argument("--limit", type=int, default=None, help="filter: first N val lines (default: all 1014)")
    p.add_argument("--langs", default="de,fr,cs", help="filter: target languages of the multi30k data")
    p.add_argument("--rules", default=None, help="filter: rules YAML (default: the shipped model's calibration)")
    p.add_argument("--match-pool", type=int, default=5000, help="web: images and captions embedded and searched")
    p.add_argument("--examples", type=int, default=50_000, help="flow: demo examples (8 per image)")
    p.add_argument("--sizes", default="50000,200000", help="memory: example counts to compare")
    p.add_argument("--work", type=Path, default=None, help="flow/memory: working folder (default: a temporary one)")
    p.add_argument("--backtranslation", action="store_true", help="flow/memory: back-translate too (both sides)")
    p.add_argument("--resume", action="store_true", help="flow: work redone after a SIGKILL at half the chunks")
    p.add_argument("--stage", action="store_true", help="whole translate stage on a VQAv2-like stream (dedup + cache)")
    p.add_argument("--vmap", action="store_true", help="engine with vs without the output-vocabulary map (use_vmap)")
    p.add_argument("--vmap-entries", type=int, default=24_000, help="vmap: always-candidate entries of the map")
    p.add_argument("--shape", default="600m", choices=["600m", "1.3b", "tiny"],
                   help="random-weight NLLB shape, built once (tiny: smoke test only)")
    p.add_argument("--sentences", type=int, default=32, help="engine mode: caption-length inputs")
    p.add_argument("--tokens", type=int, default=24, help="engine mode: output tokens forced per input on both sides")
    p.add_argument("--rows", type=int, default=256, help="stage mode: VQA rows (question + answer)")
    p.add_argument("--languages", default="de,fr", help="stage mode: target languages")
    p.add_argument("--reference-rows", type=int, default=64,
                   help="stage mode: rows the HF reference is timed on (its per-row cost does not depend on repetition)")
    p.add_argument("--repeats", type=int, default=1, help="engine mode: timed runs per side (best is kept); flow: runs per side (median ratio)")
    p.add_argument("--batch-size", type=int, default=32, help="HF generate batch size (padded)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--compute-type", default="auto", help="CT2 compute type (auto: int8 on CPU, int8_float16 on GPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for both sides (default: all cores)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where benchmark models are built (~/.cache/mblip/bench)")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("verify", help="recompute checksums and row counts of an output against its manifest")
    p.add_argument("out", type=Path, help="output root (the folder holding manifest.json)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("export", help="write the trainer view (Parquet) and/or the mBLIP JSON format of an output")
    p.add_argument("out", type=Path, help="output root (the folder holding manifest.json)")
    p.add_argument("--dest", type=Path, default=None, help="export folder (default: OUT/export)")
    p.add_argument("--format", nargs="+", default=["trainer", "mblip"], choices=["trainer", "mblip"])
    p.add_argument("--languages", nargs="*", default=[], help="project codes (default: every kept language)")
    p.add_argument("--prompts", default="row", choices=["row", "english"],
                   help="row: the shards' translated prompts (English templates where missing); english: English templates")
    p.set_defaults(func=_cmd_export_dataset)

    p = sub.add_parser("score", help="score translation pairs (JSONL/Parquet src, tgt, lang) with every filter signal")
    p.add_argument("pairs", type=Path, help="JSON Lines or .parquet with src (English), tgt, lang (NLLB code)")
    p.add_argument("--out", type=Path, required=True, help="output JSON Lines (input order, signals, keep, reason)")
    _add_filter_model_args(p)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("eval-filter", help="filter recall per failure mode on corrupted multi30k human translations")
    p.add_argument("--data", type=Path, default=None, help="multi30k directory (default: the shipped val copy; other splits need it)")
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
    p.add_argument("--src", default="eng_Latn", help="source language, NLLB or project code (default eng_Latn)")
    p.add_argument("--tgt", required=True, help="target language, NLLB or project code, e.g. deu_Latn")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per batch (0 = CTranslate2 default)")
    p.add_argument("--chunk-lines", type=int, default=1000, help="lines read and translated at a time")
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("eval-mt", help="chrF++ and BLEU of a converted NLLB model on parallel data (default: shipped model, Multi30k val)")
    p.add_argument("--model", default=None, help="converted NLLB directory (default: the shipped Multi30k model)")
    p.add_argument("--data", type=Path, default=None,
                   help="directory with SPLIT.LANG(.gz) files (default: shipped Multi30k val); "
                   "`xgqa`: the shipped held-out xGQA questions (en-de, de-en)")
    p.add_argument("--split", default="val")
    p.add_argument("--directions", default=None, help="comma-separated src-tgt project codes (default: en-de,en-fr,en-cs,de-en,fr-en,cs-en)")
    p.add_argument("--limit", type=int, default=None, help="first N lines per direction (default: all)")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")
    p.set_defaults(func=_cmd_eval_mt)
    _add_model_commands(sub)
    from model.evaluate.cli import add_eval_parser

    add_eval_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    # Embedded Prefect starts a local server subprocess; give it time on small, busy machines.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise
    try:
        return args.func(args)
    except (ValueError, OSError) as e:  # bad config or data; a path that cannot be read or written
        if args.debug:
            raise
        print(f"error: {describe_error(e)}", file=sys.stderr)
        return 2


def describe_error(error: BaseException) -> str:
    """For an OS error one line, the path and the cause ("...: Permission denied"); else the message."""
    if isinstance(error, OSError) and error.strerror:
        paths = [p for p in (error.filename, error.filename2) if p]
        cause = error.strerror
        if error.errno == errno.ENOSPC and "disk full" not in cause:
            cause = f"{cause} (the disk is full)"
        return f"{' -> '.join(map(str, paths))}: {cause}" if paths else cause
    return str(error) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())

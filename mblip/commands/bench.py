"""Handlers of the bench commands (parsers: ``mblip.bench``): each runs one command from its parsed arguments."""

from __future__ import annotations

import argparse

from flows.bench.flow import main as bench_flow
from flows.bench.memory import main as bench_memory
from model.bench_loader import bench_loader
from model.bench_loader import print_report as print_loader_report
from pipeline.bench import translate as bench
from pipeline.bench.filter import bench_filter, bench_filter_cost, print_cost_report, print_report
from pipeline.bench.levers import bench_levers, print_levers_report, print_vmap_changes, vmap_output_changes
from pipeline.bench.web import run
from pipeline.filters.evaluate import read_multi30k
from pipeline.nllb.shipped import shipped_model_dir


def cmd_run(args: argparse.Namespace) -> int:
    if args.what == "loader":
        print_loader_report(bench_loader(images=args.images, batches=args.batches, workers=args.workers,
                                         work=args.work))
        return 0
    if args.what == "web":
        run(tuple(int(x) for x in args.sizes.split(",")), match_pool=args.match_pool, work=args.work)
        return 0
    if args.what in ("flow", "memory"):
        return _bench_orchestration(args)
    if args.what == "filter" and args.shape:
        print_cost_report(bench_filter_cost(args.shape, strings=args.sentences, device=args.device,
                                            compute_type=args.compute_type, threads=args.threads or 0,
                                            repeats=args.repeats, cache_dir=args.cache_dir,
                                            contrasts=args.contrasts))
        return 0
    if args.what == "filter":
        print_report(bench_filter(args.model, args.data, tuple(args.langs.split(",")), args.limit, args.repeats,
                                  args.rules, args.device, args.compute_type, args.threads or 0, args.contrasts))
        return 0

    device = args.device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    common = dict(shape=args.shape or "600m", device=device, compute_type=args.compute_type, threads=args.threads,
                  batch_size=args.batch_size, cache_dir=args.cache_dir)
    if args.levers:
        print_levers_report(bench_levers(shape=args.shape or "600m", strings=args.sentences, output_tokens=args.tokens,
                                         threads=args.threads or 2, max_batch_tokens=args.max_batch_tokens,
                                         vmap_entries=args.vmap_entries, repeats=args.repeats,
                                         cache_dir=args.cache_dir), args.sentences, args.tokens)
    elif args.vmap and args.data:
        langs = tuple(args.langs.split(","))
        held_out = {k: v[: args.limit] for k, v in read_multi30k(args.data, "val", langs).items()}
        tuning = read_multi30k(args.data, "train", langs)
        print_vmap_changes(vmap_output_changes(args.model or shipped_model_dir(), tuning, held_out, langs,
                                               threads=args.threads or 2))
    elif args.vmap:
        full, vmap, entries = bench.bench_vmap(shape=args.shape or "600m", sentences=args.sentences,
                                               output_tokens=args.tokens, vmap_entries=args.vmap_entries, device=device,
                                               compute_type=args.compute_type, threads=args.threads,
                                               repeats=args.repeats, cache_dir=args.cache_dir)
        bench.print_vmap_report(full, vmap, entries)
    elif args.stage:
        langs = tuple(x for x in args.languages.split(",") if x)
        bench.print_stage_report(bench.bench_stage(rows=args.rows, languages=langs, reference_rows=args.reference_rows,
                                                   **common))
    else:
        common.pop("batch_size")
        batch_sizes = tuple(int(x) for x in args.batch_sizes.split(","))
        bench.print_chunk_report(bench.bench_chunk(
            strings=args.sentences, output_tokens=args.tokens, reference_sentences=args.reference_sentences,
            batch_sizes=batch_sizes, max_batch_tokens=args.max_batch_tokens, repeats=args.repeats, **common))
    return 0


def _bench_orchestration(args: argparse.Namespace) -> int:
    if args.what == "flow":
        return bench_flow(examples=args.examples, work=args.work, backtranslate=args.backtranslation,
                          resume=args.resume, repeats=args.repeats)

    sizes = tuple(int(x) for x in args.sizes.split(","))
    return bench_memory(sizes=sizes, work=args.work, backtranslate=args.backtranslation)

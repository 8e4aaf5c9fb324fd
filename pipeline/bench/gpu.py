"""One prepared GPU benchmark run: translate and filter stage, 1.3B shape, float16 and int8_float16.

``python -m pipeline.bench.gpu --out gpu-report.json`` (defaults: ``--device cuda --shape 1.3b
--compute-types float16,int8_float16``) runs, per compute type:

- ``translate``: ``bench_chunk`` (a chunk's distinct strings through this engine padding-free and padded vs
  Hugging Face ``generate`` float32 at its best batch size, forced equal output lengths; tokens/s,
  ``padding_free_cost`` and ``speedup_vs_transformers``) and ``bench_vmap`` (the engine with and without
  the output-vocabulary map; ``vmap_speedup``);
- ``filter``: the translate + filter stage on the Multi30k val English lines into de/fr/cs with the
  decoded back-translation vs the reverse score (``pipeline/bench/filter.py``; seconds per side and
  ``speedup_vs_backtranslation``). Weights are random, so only the speed means anything (outputs are
  noise and run to the length cap: a worst case for decoding).

and writes one JSON report (also printed). The random-weight models are built once into the benchmark
cache (``MBLIP_BENCH_CACHE``, default ``~/.cache/mblip/bench``; the 1.3B one takes several minutes and
about 8 GB of disk). ``--device cpu --shape tiny --compute-types int8`` checks the script on a CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from pipeline.bench.filter import SIDES, run_stage, stage_rows
from pipeline.bench.models import DEFAULT_CACHE, ensure_ct2_model
from pipeline.bench.translate import bench_chunk, bench_vmap
from pipeline.filters.contrast import resolve_contrasts
from pipeline.filters.evaluate import default_data_dir, read_multi30k
from pipeline.filters.rules import FilterRules
from pipeline.nllb.engine import EngineSettings, NllbTranslator


def filter_stage(shape: str, device: str, compute_type: str, lines: int, cache_dir=None) -> dict:
    """Seconds of translate + filter per reverse mode on ``lines`` val lines x 3 languages."""
    langs = ("de", "fr", "cs")
    ct2_dir = ensure_ct2_model(shape, "int8" if device == "cpu" else "float16", cache_dir or DEFAULT_CACHE)
    engine = NllbTranslator(ct2_dir, EngineSettings(device=device, compute_type=compute_type, max_batch_tokens=4096))
    data = read_multi30k(default_data_dir("val"), "val", langs)
    rows = stage_rows({k: v[:lines] for k, v in data.items()}, langs)
    out = {"rows": rows.height, "compute_type": engine.compute_type}
    rules = FilterRules()
    for side in SIDES:  # as a run with the default rules: no margin rule on, so no margin computed
        t = run_stage(engine, rows, rules, side, None, resolve_contrasts(None, rules))
        out[side] = {"seconds": round(t.seconds, 3), "decoded_inputs": t.decoded_inputs, "scored": t.scored}
    out["speedup_vs_backtranslation"] = round(out["decode"]["seconds"] / out["score"]["seconds"], 3)
    return out


def run(device: str, shape: str, compute_types: tuple[str, ...], sentences: int, tokens: int, lines: int,
        repeats: int, cache_dir=None) -> dict:
    report = {"device": device, "shape": shape, "host": platform.node(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "sentences": sentences, "output_tokens": tokens, "runs": {}}
    if device == "cuda":
        import ctranslate2

        report["cuda_devices"] = ctranslate2.get_cuda_device_count()
    for compute_type in compute_types:
        chunk = bench_chunk(shape=shape, strings=sentences, output_tokens=tokens, device=device,
                            compute_type=compute_type, repeats=repeats, cache_dir=cache_dir,
                            batch_sizes=(32, 64, 128, 256))
        size, hf = chunk.best_reference
        free, padded = chunk.modes["padding-free"], chunk.modes["padded"]
        full, vmap, entries = bench_vmap(shape=shape, sentences=sentences, output_tokens=tokens, device=device,
                                         compute_type=compute_type, repeats=repeats, cache_dir=cache_dir)
        report["runs"][compute_type] = {
            "translate": {
                "strings": chunk.strings, "transformers_batch_size": size,
                "transformers_tokens_per_s": round(hf.tokens_per_s, 1),
                "padding_free_tokens_per_s": round(free.tokens_per_s, 1),
                "padded_tokens_per_s": round(padded.tokens_per_s, 1),
                "padding_free_cost": round(padded.tokens_per_s / free.tokens_per_s, 3),
                "speedup_vs_transformers": round(free.tokens_per_s / hf.tokens_per_s, 3),
                "vmap_entries": entries, "vmap_tokens_per_s": round(vmap.tokens_per_s, 1),
                "full_vocabulary_tokens_per_s": round(full.tokens_per_s, 1),
                "vmap_speedup": round(vmap.tokens_per_s / full.tokens_per_s, 3),
            },
            "filter": filter_stage(shape, device, compute_type, lines, cache_dir),
        }
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="translate + filter benchmarks on a GPU, one JSON report")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--shape", default="1.3b", choices=["600m", "1.3b", "tiny"])
    p.add_argument("--compute-types", default="float16,int8_float16")
    p.add_argument("--sentences", type=int, default=4000, help="translate: distinct strings of the chunk")
    p.add_argument("--tokens", type=int, default=24, help="translate: output tokens forced per input")
    p.add_argument("--lines", type=int, default=1014, help="filter: multi30k val lines (x 3 languages)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per side (best kept)")
    p.add_argument("--cache-dir", type=Path, default=None, help="benchmark model cache")
    p.add_argument("--out", type=Path, default=Path("gpu-report.json"))
    args = p.parse_args(argv)
    report = run(args.device, args.shape, tuple(c for c in args.compute_types.split(",") if c), args.sentences,
                 args.tokens, args.lines, args.repeats, args.cache_dir)
    text = json.dumps(report, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

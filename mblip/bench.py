"""``mblip bench ...``: the benchmarks in ``pipeline.bench`` and ``flows.bench``."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: `bench translate` (engine vs HF generate), `--stage` (whole stage)")
    p.add_argument("what", choices=["translate", "filter", "flow", "memory", "web", "loader"],
                   help="translate: engine; filter: translate+filter, back-translation vs reverse score; "
                        "flow: orchestration overhead; memory: peak RSS at two sizes; "
                        "web: noun-phrase sampling at two sizes (--sizes, captions), CLIP embedding + FAISS search; "
                        "loader: the trainer's data loader on image folders vs webdataset shards (images/s)")
    p.add_argument("--images", type=int, default=400, help="loader: JPEGs (5 caption rows each)")
    p.add_argument("--batches", type=int, default=40, help="loader: timed batches per layout")
    p.add_argument("--workers", type=int, default=0, help="loader: DataLoader worker processes")
    p.add_argument("--model", default=None, help="filter, vmap: converted NLLB directory (default: the shipped model)")
    p.add_argument("--data", type=Path, default=None,
                   help="filter, vmap: multi30k directory (filter default: the shipped val copy)")
    p.add_argument("--limit", type=int, default=None, help="filter, vmap: first N val lines (default: all 1014)")
    p.add_argument("--langs", default="de,fr,cs", help="filter: target languages of the multi30k data")
    p.add_argument("--rules", default=None, help="filter: rules YAML (default: the shipped model's calibration)")
    p.add_argument("--match-pool", type=int, default=5000, help="web: images and captions embedded and searched")
    p.add_argument("--examples", type=int, default=50_000, help="flow: demo examples (8 per image)")
    p.add_argument("--sizes", default="50000,200000", help="memory: example counts to compare")
    p.add_argument("--work", type=Path, default=None, help="flow/memory: working folder (default: a temporary one)")
    p.add_argument("--backtranslation", action="store_true", help="flow/memory: back-translate too (both sides)")
    p.add_argument("--resume", action="store_true", help="flow: work redone after a SIGKILL at half the chunks")
    p.add_argument("--stage", action="store_true", help="whole translate stage on a VQAv2-like stream (dedup + cache)")
    p.add_argument("--levers", action="store_true",
                   help="engine settings one change at a time (token budget, threads, compute type, padding, vmap)")
    p.add_argument("--vmap", action="store_true",
                   help="engine with vs without the output-vocabulary map (use_vmap); with --data: how often"
                        " the map changes outputs on held-out text (map from train, outputs on val)")
    p.add_argument("--vmap-entries", type=int, default=24_000, help="vmap: always-candidate entries of the map")
    p.add_argument("--shape", default=None, choices=["600m", "1.3b", "tiny"],
                   help="random-weight NLLB shape, built once (translate: default 600m; filter: time the model "
                        "side at this shape instead of the quality run; tiny: smoke test only)")
    p.add_argument("--sentences", type=int, default=2000,
                   help="engine mode: distinct strings of one chunk (COCO/VQAv2 lengths); filter --shape: rows")
    p.add_argument("--reference-sentences", type=int, default=96,
                   help="engine mode: strings the HF reference is timed on (its cost per token does not grow "
                        "with the chunk)")
    p.add_argument("--batch-sizes", default="16,32,64", help="engine mode: HF generate batch sizes (best kept)")
    p.add_argument("--max-batch-tokens", type=int, default=2048,
                   help="engine/levers mode: CT2 token budget per batch (2048: translation.max_batch_tokens' default)")
    p.add_argument("--tokens", type=int, default=16,
                   help="engine/levers/vmap mode: output tokens forced per input on both sides (16: a caption's or "
                        "question's length in NLLB pieces)")
    p.add_argument("--contrasts", type=int, default=None,
                   help="filter: other sources each source margin is scored against (one forced-decoding pass "
                        "each; 0: no margin). Default: as a run's filter.contrasts: null, 4 when the rules "
                        "have a margin rule on (the shipped model's do), else 0 (NLLB-200's defaults)")
    p.add_argument("--rows", type=int, default=256, help="stage mode: VQA rows (question + answer)")
    p.add_argument("--languages", default="de,fr", help="stage mode: target languages")
    p.add_argument("--reference-rows", type=int, default=64,
                   help="stage mode: rows the HF reference is timed on "
                        "(its per-row cost does not depend on repetition)")
    p.add_argument("--repeats", type=int, default=1,
                   help="engine mode: timed runs per side (best is kept); flow: runs per side (median ratio)")
    p.add_argument("--batch-size", type=int, default=32, help="HF generate batch size (padded)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--compute-type", default="auto", help="CT2 compute type (auto: int8 on CPU, int8_float16 on GPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for both sides (default: all cores)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where benchmark models are built (~/.cache/mblip/bench)")
    p.set_defaults(handler="bench:cmd_run")

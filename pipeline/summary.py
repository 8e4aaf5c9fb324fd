"""Human-readable run summary printed by the CLI: per-language counts, examples, where outputs are."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.output_dir import MANIFEST
from pipeline.outputs.stats import STATS


def print_summary(out_dir: Path, manifest: dict, note: str | None = None, examples: int = 2) -> None:
    stats = json.loads((out_dir / STATS).read_text())
    t = stats["totals"]
    print()
    print(f"Output: {out_dir}")
    print(f"  records {t['records']}  kept {t['kept']}  rejected {t['rejected']}  quarantined {t['quarantined']}")
    model = manifest.get("model") or {}
    print(f"  model: {model.get('model_id')} ({model.get('quantization')})")
    tr = (stats.get("processing") or {}).get("translation")
    if tr and tr.get("requested"):  # chunk sidecars, summed by pipeline/outputs/stats.py
        print(f"  translation: {tr['requested']} strings, {tr['distinct']} distinct (dedup x{tr['dedup_factor']:.2f}), "
              f"cache hits {100 * tr['cache_hit_rate']:.0f}%, {tr['translated']} translated by the model")
    print()
    print(f"{'lang':<5} {'assigned':>8} {'kept':>6} {'rejected':>8} {'keep %':>7} {'mean BT chrF++':>15}")
    for lang, s in stats["languages"].items():
        rate = 100.0 * s["kept"] / s["assigned"] if s["assigned"] else 0.0
        chrf = s.get("mean_bt_chrf")
        print(f"{lang:<5} {s['assigned']:>8} {s['kept']:>6} {s['rejected']:>8} {rate:>6.1f}% "
              f"{'-' if chrf is None else f'{chrf:.1f}':>15}")
    if manifest.get("run", {}).get("chunks"):
        print(f"  {describe_chunks(manifest['run'])}")
    _print_reasons(stats)
    _print_examples(out_dir, manifest, examples)
    _print_vqa(out_dir, manifest, examples)
    print()
    print(f"  kept shards:  {out_dir / 'data'}/<lang>/part-*.parquet")
    print(f"  rejects:      {out_dir / 'rejects'}   quarantine: {out_dir / 'quarantine'}")
    print(f"  manifest:     {out_dir / MANIFEST}")
    if note:
        print()
        print(note)


def describe_chunks(run: dict) -> str:
    """What a run did with its chunks (``manifest["run"]``). With languages to recompute (``regenerate
    --languages``), every chunk is worked on: a finished one has only those languages' rows recomputed."""
    chunks = {a: int((run.get("chunks") or {}).get(a, 0)) for a in ("done", "redecide", "rescore", "process")}
    forced = run.get("languages") or []
    if forced:
        return (f"chunks: {', '.join(forced)} recomputed in all {sum(chunks.values())} ({chunks['done']} with the "
                f"other languages' rows reused, {chunks['process']} processed whole)")
    return (f"chunks: {chunks['done']} reused, {chunks['redecide']} re-decided from stored scores, "
            f"{chunks['rescore']} rescored (no translation), {chunks['process']} processed")


# Examples are a seeded random sample (a hash of example_id with this seed), not the first rows: the first
# ids of a run are one source's first images, and a filter that looks good there may not be.
SAMPLE_SEED = 0


def _sample(rows: pl.LazyFrame, n: int, by: list[str], seed: int = SAMPLE_SEED) -> pl.DataFrame:
    """Up to ``n`` rows per ``by`` group, picked at random by a seeded hash of ``example_id`` (the same
    output prints the same rows)."""
    order = pl.col("example_id").hash(seed).alias("_order")
    return rows.with_columns(order).sort([*by, "_order"]).group_by(by, maintain_order=True).head(n).collect()


def _print_reasons(stats: dict) -> None:
    """Reject reasons per language, most frequent first (``stats.json``: ``languages.<lang>.reject_reasons``)."""
    lines = []
    for lang, s in stats["languages"].items():
        reasons = sorted((s.get("reject_reasons") or {}).items(), key=lambda item: (-item[1], item[0]))
        if reasons:
            lines.append(f"  {lang:<5} " + ", ".join(f"{reason} {n}" for reason, n in reasons))
    if lines:
        print()
        print("Reject reasons per language:")
        print("\n".join(lines))


# The columns the examples print: an output with embedded images has an ``image`` column in its kept shards
# only, and the summary never needs the image bytes.
SUMMARY_COLUMNS = ("example_id", "lang", "task", "status", "reject_reason", "text_en", "text_tgt", "prompt",
                   "backtranslation_en", "score_bt_chrf", "answer_en", "answer_tgt", "answer_translated")


def _scan_rows(out_dir: Path, manifest: dict) -> pl.LazyFrame | None:
    """Kept and rejected rows of the output, ``SUMMARY_COLUMNS`` only (those the shards have); None when
    there are none. Shards of the two splits may differ in columns (``image`` in kept shards only)."""
    files = [out_dir / f["path"] for f in manifest["files"] if f["split"] in ("kept", "rejected") and f["rows"]]
    if not files:
        return None
    rows = pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
    have = set(rows.collect_schema().names())
    return rows.select([c for c in SUMMARY_COLUMNS if c in have])


def _print_examples(out_dir: Path, manifest: dict, n: int) -> None:
    """Up to ``n`` kept and ``n`` rejected captions per language, a seeded random sample (``_sample``)."""
    rows = _scan_rows(out_dir, manifest)
    if rows is None:
        return
    rows = rows.filter(pl.col("task") == "caption")
    sample = _sample(rows, n, ["lang", "status"])
    if sample.is_empty():
        return
    print()
    print(f"Examples, a random sample (seed {SAMPLE_SEED}) of kept and rejected captions per language "
          "(English -> translation -> back-translation, status; the instruction the row trains with):")
    for r in sample.iter_rows(named=True):
        print(f"  [{r['lang']}] {_clip(r['text_en'])}")
        if r.get("prompt"):
            print(f"       prompt: {_clip(r['prompt'])}")
        print(f"       -> {_clip(r['text_tgt'])}")
        print(f"       <- {_clip(r['backtranslation_en'])}   ({r['status']}"
              f"{', ' + r['reject_reason'] if r['reject_reason'] else ''}"
              f"{', chrF++ %.1f' % r['score_bt_chrf'] if r['score_bt_chrf'] is not None else ''})")


def _print_vqa(out_dir: Path, manifest: dict, n: int) -> None:
    """VQA rows kept per language, and up to ``n`` kept examples per language (a seeded random sample)
    with question and answer."""
    rows = _scan_rows(out_dir, manifest)
    if rows is None:
        return
    vqa = rows.filter(pl.col("task") == "vqa")
    counts = (vqa.group_by("lang").agg(pl.len().alias("rows"), (pl.col("status") == "kept").sum().alias("kept"))
              .sort("lang").collect())
    if counts.is_empty():
        return
    print()
    rates = [f"{r['lang']} {r['kept']}/{r['rows']} ({100.0 * r['kept'] / r['rows']:.0f}%)"
             for r in counts.iter_rows(named=True)]
    print("VQA rows kept: " + ", ".join(rates))
    sample = _sample(vqa.filter(pl.col("status") == "kept"), n, ["lang"])
    if sample.is_empty():
        return
    print(f"Kept VQA examples, a random sample (seed {SAMPLE_SEED}) (English question -> translation, answer -> "
          "translated answer):")
    for r in sample.iter_rows(named=True):
        chrf = "" if r["score_bt_chrf"] is None else f"   (BT chrF++ {r['score_bt_chrf']:.1f})"
        print(f"  [{r['lang']}] {_clip(r['text_en'])}  ->  {_clip(r['text_tgt'])}{chrf}")
        print(f"       answer: {r['answer_en']} -> {r['answer_tgt']}"
              f"{'' if r['answer_translated'] else ' (kept in English)'}")
        if r.get("prompt"):
            print(f"       prompt: {_clip(r['prompt'])}")


def _clip(text: str | None, width: int = 100) -> str:
    text = text or ""
    return text if len(text) <= width else text[: width - 1] + "…"

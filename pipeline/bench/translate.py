"""Translation benchmarks against the reference approach (Hugging Face ``generate``, padded batches).

``bench_engine``: the same caption-length inputs through (a) ``M2M100ForConditionalGeneration.generate``
in float32 with padded batches, greedy, as the mBLIP reference code did, and (b) this engine
(CTranslate2, int8 on CPU by default), both forced to produce exactly ``output_tokens`` tokens per
input after the language token (``min_new_tokens == max_new_tokens`` and
``min_decoding_length == max_decoding_length``), so tokens/s compare like for like.

``bench_stage``: a VQAv2-like stream (questions and short answers with Zipf-like repetition) through
the whole translate stage: the reference translates every row's question and answer with HF
generate (no dedup, no cache); ours runs ``translate_frame`` + ``translate_answers`` with dedup and
the persistent cache, cold (empty cache) and warm (second run). Output length follows the same rule
on both sides (``max_length_ratio * longest input in the batch + 10``); random weights rarely emit
``</s>``, so both sides decode to that cap: a worst case for both.

Weights are random but shapes are real (``pipeline/bench/models.py``), so speed is the real model's.

GPU: ``mblip bench translate --device cuda --compute-type float16 [--shape 1.3b]`` converts the model
to float16 and runs both sides on the GPU (HF still in float32, as the reference did); ``--stage``
works the same way. On CPU the defaults are CT2 int8 against HF float32, all cores on both sides.

(Over 300 lines on purpose: the engine, stage and vmap benchmarks share the reference translator, the
timing record and the report format.)
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.answers import translate_answers
from pipeline.assign import assign_languages
from pipeline.bench.corpus import caption_sentences, chunk_strings, vqa_stream
from pipeline.bench.levers import write_bench_vmap
from pipeline.bench.models import DEFAULT_CACHE, engine_threads, ensure_ct2_model, ensure_hf_model
from pipeline.languages import SOURCE_NLLB, resolve_languages
from pipeline.nllb.cache import TranslationCache
from pipeline.nllb.convert import SPM_FILENAME
from pipeline.nllb.engine import EngineSettings, NllbTranslator, available_cores
from pipeline.translate import CachingTranslator, TranslationStats, translate_frame

log = logging.getLogger(__name__)

@dataclass
class Timing:
    name: str
    seconds: float
    tokens: int = 0
    examples: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0


def _threads(threads: int | None) -> int:
    """The reference's torch threads: the cores the engine's auto split uses too (like for like)."""
    return threads or available_cores()


class HfReference:
    """The reference approach: HF tokenizer, padded batches, ``generate`` greedy, float32."""

    def __init__(self, hf_dir, device: str = "cpu", threads: int | None = None, dtype: str = "float32"):
        import torch
        from transformers import AutoTokenizer, M2M100ForConditionalGeneration

        if device == "cpu":
            torch.set_num_threads(_threads(threads))
        self.torch = torch
        self.device = device
        import sentencepiece as spm

        self.tokenizer = AutoTokenizer.from_pretrained(str(hf_dir), src_lang=SOURCE_NLLB)
        # Input ids from the sentencepiece model itself, exactly as the engine builds them
        # ([src] + pieces + </s>): both sides see identical inputs (a tokenizer rebuilt from a local
        # vocabulary file need not split words the way sentencepiece does).
        self.sp = spm.SentencePieceProcessor(model_file=str(Path(hf_dir) / SPM_FILENAME))
        self.model = M2M100ForConditionalGeneration.from_pretrained(str(hf_dir), dtype=getattr(torch, dtype))
        self.model.to(device).eval()

    def encode(self, texts: list[str]) -> dict:
        """Padded ``input_ids`` and ``attention_mask`` ([batch, longest]) for ``texts``."""
        torch = self.torch
        rows = [
            self.tokenizer.convert_tokens_to_ids([SOURCE_NLLB, *pieces, "</s>"])
            for pieces in self.sp.encode(texts, out_type=str)
        ]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}

    def translate(self, texts: list[str], tgt_lang: str, batch_size: int, new_tokens: int | None = None,
                  max_length_ratio: float = 3.0) -> tuple[list[str], int]:
        """Translations and the number of generated tokens (without the forced language token).

        ``new_tokens`` forces exactly that many tokens after the language token; otherwise the cap is
        ``max_length_ratio * longest input of the batch + 10``, as in the engine.
        """
        torch = self.torch
        lang_id = self.tokenizer.convert_tokens_to_ids(tgt_lang)
        outputs, generated = [], 0
        for start in range(0, len(texts), batch_size):
            batch = self.encode(texts[start:start + batch_size])
            if new_tokens is not None:
                lengths = dict(min_new_tokens=new_tokens + 1, max_new_tokens=new_tokens + 1)
            else:
                cap = int(max_length_ratio * batch["input_ids"].shape[1]) + 10
                lengths = dict(max_new_tokens=cap + 1)
            with torch.inference_mode():
                out = self.model.generate(
                    **batch, forced_bos_token_id=lang_id, num_beams=1, do_sample=False, **lengths,
                )
            # out: [batch, 1 (decoder start) + 1 (language) + generated]
            seqs = out[:, 2:]
            eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
            for row in seqs.tolist():
                row = [t for t in row if t not in (pad,)]
                if eos in row:
                    row = row[: row.index(eos)]
                generated += len(row)
                outputs.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return outputs, generated


@dataclass
class ChunkResult:
    """``bench_chunk``'s timings: the reference per batch size, and this engine per batching mode."""

    strings: int
    output_tokens: int
    reference: dict[int, Timing]  # HF generate, by batch size
    modes: dict[str, Timing]  # "padding-free" (the default, batch_invariant) and "padded"
    default_mode: str = "padding-free"

    @property
    def best_reference(self) -> tuple[int, Timing]:
        return max(self.reference.items(), key=lambda item: item[1].tokens_per_s)


def _evenly_spaced(items: list, k: int) -> list:
    if k >= len(items):
        return list(items)
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def bench_chunk(
    shape: str = "600m", strings: int = 2000, output_tokens: int = 16, reference_sentences: int = 96,
    batch_sizes: tuple[int, ...] = (16, 32, 64), device: str = "cpu", compute_type: str = "auto",
    threads: int | None = None, max_batch_tokens: int = EngineSettings.max_batch_tokens, use_vmap: bool = False,
    repeats: int = 1, cache_dir=None,
) -> ChunkResult:
    """A chunk's worth of distinct strings (``corpus.chunk_strings``: COCO-like captions and VQAv2-like
    questions) through this engine in one call per batching mode, and the reference (HF ``generate``,
    float32, padded) at each of ``batch_sizes`` on an evenly spaced sample of ``reference_sentences`` of
    them, sorted by length (the reference's most favourable order; its cost per token does not depend on
    the chunk's size). Every input is forced to ``output_tokens`` output tokens on both sides."""
    cache_dir = cache_dir or DEFAULT_CACHE
    hf_dir = ensure_hf_model(shape, cache_dir)
    ct2_dir = ensure_ct2_model(shape, "int8" if device == "cpu" else "float16", cache_dir)
    texts = chunk_strings(strings, seed=7)
    tgt = "deu_Latn"
    options = dict(device=device, compute_type=compute_type, max_batch_tokens=max_batch_tokens,
                   use_vmap=use_vmap, **engine_threads(threads, device))
    engines = {"padding-free": NllbTranslator(ct2_dir, EngineSettings(**options, batch_invariant=True)),
               "padded": NllbTranslator(ct2_dir, EngineSettings(**options, batch_invariant=False))}
    forced = dict(min_decoding_length=output_tokens, max_decoding_length=output_tokens)
    modes: dict[str, Timing] = {}
    for _ in range(repeats):  # alternate the modes so a busy machine slows both alike; keep each one's best
        for name, engine in engines.items():
            engine.translate(texts[:8], SOURCE_NLLB, tgt, **forced)  # warm-up
            t0 = time.perf_counter()
            results = engine.translate(texts, SOURCE_NLLB, tgt, **forced)
            timing = Timing(name, time.perf_counter() - t0, sum(r.decoded_tokens for r in results), len(texts))
            modes[name] = timing if name not in modes or timing.seconds < modes[name].seconds else modes[name]
    print(f"engine: CTranslate2 on {engines['padding-free'].device}, compute type "
          f"{engines['padding-free'].compute_type}, token budget {max_batch_tokens}, vmap {use_vmap}")
    del engines
    hf = HfReference(hf_dir, device=device, threads=threads)
    sample = sorted(_evenly_spaced(texts, reference_sentences), key=lambda t: len(t.split()))
    hf.translate(sample[:4], tgt, batch_size=4, new_tokens=4)  # warm-up
    reference = {}
    for batch_size in batch_sizes:
        t0 = time.perf_counter()
        _, tokens = hf.translate(sample, tgt, batch_size=batch_size, new_tokens=output_tokens)
        reference[batch_size] = Timing(f"transformers batch {batch_size}", time.perf_counter() - t0, tokens,
                                       len(sample))
    expected = {len(sample) * output_tokens} | {len(texts) * output_tokens}
    if {t.tokens for t in [*reference.values(), *modes.values()]} - expected:
        raise RuntimeError("output lengths differ between the sides: the comparison would not be like for like")
    return ChunkResult(len(texts), output_tokens, reference, modes)


def _timing_line(name: str, t: Timing) -> str:
    return f"{name:<30} {t.examples} inputs, {t.tokens} tokens in {t.seconds:.2f} s: {t.tokens_per_s:.1f} tokens/s"


def print_chunk_report(result: ChunkResult) -> float:
    print(f"chunk: {result.strings} distinct strings (COCO-like captions, VQAv2-like questions), "
          f"{result.output_tokens} output tokens forced per input on both sides")
    for t in result.reference.values():
        print(_timing_line(t.name, t))
    size, best = result.best_reference
    print(f"{'transformers best':<30} batch {size}: {best.tokens_per_s:.1f} tokens/s")
    for t in result.modes.values():
        print(_timing_line(f"ctranslate2 {t.name}", t))
    cost = result.modes["padded"].tokens_per_s / result.modes["padding-free"].tokens_per_s
    print(f"padding_free_cost: {cost:.3f}  (padded / padding-free tokens/s; 1.0 = free)")
    speedup = result.modes[result.default_mode].tokens_per_s / best.tokens_per_s
    print(f"speedup_vs_transformers: {speedup:.2f}")
    return speedup


def _stage_frame(rows: int, languages: tuple[str, ...], seed: int):
    """A VQA chunk as the pipeline has it after assignment (``lang``/``lang_nllb`` set)."""
    import polars as pl

    pairs = vqa_stream(rows, seed=seed)
    frame = pl.DataFrame({
        "example_id": [f"q{i:07d}" for i in range(rows)],
        "task": ["vqa"] * rows,
        "text_en": [q for q, _ in pairs],
        "answer_en": [a for _, a in pairs],
    })
    return assign_languages(frame, resolve_languages(languages), seed=seed, mode="proportional")


def bench_stage(
    shape: str = "600m", rows: int = 256, languages: tuple[str, ...] = ("de", "fr"),
    batch_size: int = 32, device: str = "cpu", compute_type: str = "auto", threads: int | None = None,
    max_length_ratio: float = 1.0, cache_dir=None, seed: int = 0, reference_rows: int | None = 64,
) -> dict[str, Timing | dict]:
    """Examples/s of the whole translate stage: reference (every row, HF) vs ours (dedup + cache).

    The reference does the same work for every row whatever the repetition, so its rate is measured
    on an evenly spaced sample of ``reference_rows`` rows of the same stream (None = all rows) to keep
    the benchmark short; ours runs on the whole stream, where repetition pays off.
    """
    import polars as pl

    cache_dir = cache_dir or DEFAULT_CACHE
    quantization = "int8" if device == "cpu" else "float16"
    hf_dir = ensure_hf_model(shape, cache_dir)
    ct2_dir = ensure_ct2_model(shape, quantization, cache_dir)
    frame = _stage_frame(rows, languages, seed)
    todo = frame.filter(pl.col("lang_nllb") != SOURCE_NLLB)
    out: dict[str, Timing | dict] = {}

    engine = NllbTranslator(ct2_dir, EngineSettings(
        device=device, compute_type=compute_type, **engine_threads(threads, device),
        max_length_ratio=max_length_ratio,
    ))
    with tempfile.TemporaryDirectory(prefix="mblip-bench-cache-") as tmp:
        cache = TranslationCache(tmp, engine.cache_key())
        translator = CachingTranslator(engine, cache)
        for run in ("cold", "warm"):
            stats = TranslationStats()
            model_before = sum(engine.model_seconds.values())
            t0 = time.perf_counter()
            result = translate_frame(frame, translator, stats=stats)
            result = translate_answers(result, translator, stats=stats)
            out[f"ours_{run}"] = Timing(f"ours ({run} cache)", time.perf_counter() - t0, stats.decoded_tokens,
                                        todo.height)
            out[f"stats_{run}"] = stats.as_dict()
            out[f"model_seconds_{run}"] = sum(engine.model_seconds.values()) - model_before
        cache.close()
    del engine, translator

    sample = todo
    if reference_rows and reference_rows < todo.height:
        step = todo.height / reference_rows
        sample = todo[[int(i * step) for i in range(reference_rows)]]
    hf = HfReference(hf_dir, device=device, threads=threads)
    t0 = time.perf_counter()
    tokens = 0
    for (lang,), group in sample.group_by(["lang_nllb"], maintain_order=True):
        for column in ("text_en", "answer_en"):
            _, n = hf.translate(group[column].to_list(), lang, batch_size=batch_size, max_length_ratio=max_length_ratio)
            tokens += n
    out["reference"] = Timing("reference (HF generate, every row)", time.perf_counter() - t0, tokens, sample.height)
    return out


def print_stage_report(result: dict) -> float:
    ref = result["reference"]
    for key in ("reference", "ours_cold", "ours_warm"):
        t = result[key]
        print(f"{t.name:<38} {t.examples} examples in {t.seconds:.2f} s: {t.examples_per_s:.1f} examples/s")
    for run in ("cold", "warm"):
        s = result[f"stats_{run}"]
        print(f"  {run}: requested {s['requested']}, distinct {s['distinct']} (dedup x{s['dedup_factor']:.2f}), "
              f"cache hits {s['cache_hits']} ({100 * s['cache_hit_rate']:.0f}%), translated {s['translated']}")
    cold = result["ours_cold"].examples_per_s / ref.examples_per_s
    warm = result["ours_warm"].examples_per_s / ref.examples_per_s
    print(f"stage_speedup_cold: {cold:.2f}")
    print(f"stage_speedup_warm: {warm:.2f}")
    share = result["model_seconds_cold"] / result["ours_cold"].seconds
    print(f"examples_per_s: {result['ours_cold'].examples_per_s:.1f}  (cold cache: every distinct string translated)")
    print(f"model_time_share: {share:.3f}  (time inside CTranslate2 / the stage's wall time, cold cache)")
    return share


def bench_vmap(
    shape: str = "600m", sentences: int = 32, output_tokens: int = 24, vmap_entries: int = 24_000,
    device: str = "cpu", compute_type: str = "auto", threads: int | None = None, repeats: int = 1, cache_dir=None,
) -> tuple[Timing, Timing, int]:
    """Tokens/s of this engine over the whole output vocabulary and with ``use_vmap``, same inputs and
    forced output lengths (both sides alternate; each keeps its best run).

    The map (``pipeline/nllb/vmap.py``) holds the pieces of the benchmark's text, the language codes and
    the identity rules, topped up with other vocabulary entries to ``vmap_entries`` always-candidates:
    a random-weight benchmark model has only a small real tokenizer, while one target language of
    NLLB-200 uses some tens of thousands of its 256k entries. Returns both timings and the map size.
    """
    ct2_dir = ensure_ct2_model(shape, "int8" if device == "cpu" else "float16", cache_dir or DEFAULT_CACHE)
    entries = write_bench_vmap(ct2_dir, vmap_entries)
    texts = caption_sentences(sentences, seed=7)
    options = dict(device=device, compute_type=compute_type, **engine_threads(threads, device))
    engines = {"full vocabulary": NllbTranslator(ct2_dir, EngineSettings(**options)),
               "vmap": NllbTranslator(ct2_dir, EngineSettings(**options, use_vmap=True))}
    best: dict[str, Timing] = {}
    for engine in engines.values():  # warm-up
        engine.translate(texts[:4], SOURCE_NLLB, "deu_Latn", min_decoding_length=4, max_decoding_length=4)
    for _ in range(repeats):
        for name, engine in engines.items():
            t0 = time.perf_counter()
            results = engine.translate(texts, SOURCE_NLLB, "deu_Latn", min_decoding_length=output_tokens,
                                       max_decoding_length=output_tokens)
            timing = Timing(name, time.perf_counter() - t0, sum(r.decoded_tokens for r in results), len(texts))
            best[name] = timing if name not in best or timing.seconds < best[name].seconds else best[name]
    return best["full vocabulary"], best["vmap"], entries


def print_vmap_report(full: Timing, vmap: Timing, entries: int) -> float:
    print(f"vmap: {entries} always-candidate entries (+ source pieces) instead of the whole vocabulary")
    for t in (full, vmap):
        print(f"{t.name:<16} {t.examples} inputs, {t.tokens} output tokens in {t.seconds:.2f} s: "
              f"{t.tokens_per_s:.1f} tokens/s")
    speedup = vmap.tokens_per_s / full.tokens_per_s
    print(f"vmap_speedup: {speedup:.2f}")
    return speedup

"""Engine settings measured side by side on a chunk's worth of strings: what each lever is worth.

``bench_levers`` translates the same chunk (``corpus.chunk_strings``) with the default engine settings and
with one setting changed at a time (token budget, threads split between batches and within a batch,
compute type, padded batches, the output-vocabulary map), alternating the settings across repeats so a
busy machine slows all alike, and keeps each one's best time; one more lever sends the same chunk as one
engine call per language (what ``translate_frame`` avoids by giving every row its own target prefix).
``print_levers_report`` prints tokens/s and the ratio to the default, one line each; nothing is chosen for
the user: the closing ``default_is_fastest:`` line says whether a lever beat the shipped defaults.

``mblip bench translate --levers [--shape 600m] [--sentences 2000] [--tokens 16]``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.bench.corpus import chunk_strings
from pipeline.bench.models import DEFAULT_CACHE, bench_corpus, ensure_ct2_model
from pipeline.languages import SOURCE_NLLB, get_language
from pipeline.nllb.engine import LANG_CODE, EngineSettings, NllbTranslator, read_vocabulary
from pipeline.nllb.vmap import target_pieces, vmap_lines, write_vmap

TARGET = "deu_Latn"


@dataclass(frozen=True)
class LeverResult:
    name: str
    seconds: float
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def lever_settings(base: EngineSettings, threads: int) -> dict[str, EngineSettings]:
    """The default and one change at a time. ``threads``: the cores (the default runs one batch on each)."""
    levers = {
        "default": base,
        "half the token budget": replace(base, max_batch_tokens=base.max_batch_tokens // 2),
        "twice the token budget": replace(base, max_batch_tokens=base.max_batch_tokens * 2),
        "padded batches": replace(base, batch_invariant=False),
        "float32 weights": replace(base, compute_type="float32"),
        # one batch on every thread: the map aborted CTranslate2 4.8.5 on two CPU replicas
        "output-vocabulary map, one batch": replace(base, use_vmap=True, inter_threads=1, intra_threads=threads),
    }
    if threads > 1:
        levers[f"1 batch at a time on {threads} threads"] = replace(base, inter_threads=1, intra_threads=threads)
    return levers


PER_LANGUAGE_CALLS = 95


def _split(texts: list[str], parts: int) -> list[list[str]]:
    """``texts`` in ``parts`` consecutive slices of (nearly) equal size."""
    size = -(-len(texts) // parts)
    return [texts[i:i + size] for i in range(0, len(texts), size)]


def write_bench_vmap(ct2_dir, entries: int) -> int:
    """A ``vmap.txt`` for the random-weight model: the benchmark text's pieces and the language codes, topped
    up to ``entries`` always-candidates (one NLLB-200 target language uses some tens of thousands of its 256k
    entries), without identity rules (see ``pipeline/nllb/vmap.py``). Returns the number of always-candidates."""
    vocabulary = read_vocabulary(ct2_dir)
    always = [t for t in vocabulary if LANG_CODE.fullmatch(t)] + target_pieces(ct2_dir, bench_corpus())
    have = set(always)
    always += [t for t in vocabulary if t not in have][: max(0, entries - len(always))]
    write_vmap(ct2_dir, vmap_lines(vocabulary, always, copy_source=False))
    return len(set(always))


def bench_levers(shape: str = "600m", strings: int = 2000, output_tokens: int = 16, threads: int = 2,
                 max_batch_tokens: int = EngineSettings.max_batch_tokens, vmap_entries: int = 24_000, repeats: int = 1,
                 cache_dir=None) -> list[LeverResult]:
    """Tokens/s of each lever on the same ``strings`` chunk strings, every input forced to ``output_tokens``."""
    ct2_dir = ensure_ct2_model(shape, "int8", cache_dir or DEFAULT_CACHE)
    write_bench_vmap(ct2_dir, vmap_entries)
    base = EngineSettings(device="cpu", compute_type="int8", inter_threads=threads, intra_threads=1,
                          max_batch_tokens=max_batch_tokens)
    texts = chunk_strings(strings, seed=7)
    forced = dict(min_decoding_length=output_tokens, max_decoding_length=output_tokens)
    best: dict[str, LeverResult] = {}
    levers = {name: (settings, 1) for name, settings in lever_settings(base, threads).items()}
    # A chunk spread over 95 languages translated one language at a time: ~21 strings per engine call
    levers["one engine call per language (95)"] = (base, PER_LANGUAGE_CALLS)
    for _ in range(repeats):
        for name, (settings, calls) in levers.items():
            engine = NllbTranslator(ct2_dir, settings)
            engine.translate(texts[:8], SOURCE_NLLB, TARGET, **forced)  # warm-up
            t0 = time.perf_counter()
            results = [r for part in _split(texts, calls)
                       for r in engine.translate(part, SOURCE_NLLB, TARGET, **forced)]
            result = LeverResult(name, time.perf_counter() - t0, sum(r.decoded_tokens for r in results))
            print(f"  {name}: {result.tokens_per_s:.1f} tokens/s", flush=True)
            if name not in best or result.seconds < best[name].seconds:
                best[name] = result
            del engine
    return list(best.values())


def print_levers_report(results: list[LeverResult], strings: int, output_tokens: int) -> bool:
    default = next(r for r in results if r.name == "default")
    print(f"levers on {strings} chunk strings, {output_tokens} output tokens forced per input "
          f"(one change from the default at a time)")
    for r in results:
        print(f"{r.name:<34} {r.tokens} tokens in {r.seconds:7.2f} s: {r.tokens_per_s:7.1f} tokens/s  "
              f"{r.tokens_per_s / default.tokens_per_s:.2f} x default")
    fastest = max(results, key=lambda r: r.tokens_per_s)
    print(f"default_is_fastest: {fastest.name == 'default'}  (fastest: {fastest.name})")
    return fastest.name == "default"


@dataclass(frozen=True)
class VmapChanges:
    """How often the output-vocabulary map changes a translation, per target language."""

    entries: int  # always-candidates of the map
    vocabulary: int
    changed: dict[str, tuple[int, int]]  # language -> (outputs that differ, outputs)

    @property
    def share_changed(self) -> float:
        n = sum(total for _, total in self.changed.values())
        return sum(diff for diff, _ in self.changed.values()) / n if n else 0.0


def vmap_output_changes(model_dir, tuning: dict[str, list[str]], held_out: dict[str, list[str]],
                        langs: tuple[str, ...], threads: int = 2) -> VmapChanges:
    """Build the map from the ``tuning`` split's target-language text (``{lang: sentences}``), then translate
    the ``held_out`` split's English (``held_out["en"]``) into each of ``langs`` with and without it, in a
    copy of ``model_dir`` (the model's own folder is never written). Greedy decoding, the run's defaults."""
    with tempfile.TemporaryDirectory(prefix="mblip-vmap-check-") as tmp:
        copy = Path(tmp) / "model"
        shutil.copytree(model_dir, copy)
        vocabulary = read_vocabulary(copy)
        always = [t for t in vocabulary if LANG_CODE.fullmatch(t)]
        always += target_pieces(copy, (s for lang in langs for s in tuning[lang]))
        write_vmap(copy, vmap_lines(vocabulary, always, copy_source=False))
        settings = EngineSettings(device="cpu", compute_type="int8", intra_threads=threads)
        full, mapped = NllbTranslator(copy, settings), NllbTranslator(copy, replace(settings, use_vmap=True))
        changed = {}
        for lang in langs:
            tgt = get_language(lang).nllb
            a = [r.text for r in full.translate(held_out["en"], SOURCE_NLLB, tgt)]
            b = [r.text for r in mapped.translate(held_out["en"], SOURCE_NLLB, tgt)]
            changed[lang] = (sum(x != y for x, y in zip(a, b)), len(a))
    return VmapChanges(len(set(always)), len(vocabulary), changed)


def print_vmap_changes(result: VmapChanges) -> float:
    print(f"vmap: {result.entries} always-candidates of {result.vocabulary} vocabulary entries, built from the "
          "tuning split's target text; held-out English translated with and without it")
    for lang, (diff, total) in result.changed.items():
        print(f"{lang:<6} {diff} of {total} outputs differ ({100 * diff / total:.2f}%)")
    print(f"vmap_outputs_changed: {result.share_changed:.4f}")
    return result.share_changed

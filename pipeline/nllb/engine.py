"""The translation engine: sentencepiece + CTranslate2, one instance per worker process.

NLLB conventions (see the NLLB model card and the CTranslate2 docs): source tokens are
``[src_code] + pieces + ["</s>"]``; the target prefix is ``[tgt_code]``; the first output token (the
language code) is dropped. The target language is always forced: without it NLLB produces garbage.

Batching: inputs are cleaned, empty ones answered without the model, the rest sorted by length and
cut into length buckets (at least one token budget each); each bucket goes to CT2 asynchronously
with a token budget (``batch_type="tokens"``), so several replicas (``inter_threads``, several GPUs)
work at once and padding stays small. Each bucket gets its own decoding cap relative to its source length, the hard
stop against repetition loops. Results come back in input order.

(Over 300 lines on purpose: the only module that talks to CTranslate2; tokenisation, bucketing, the
out-of-memory retry and decoding share its settings and NLLB's token conventions.)
"""

from __future__ import annotations

import logging
import os
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.languages import UnknownLanguageError, get_language, load_languages
from pipeline.nllb.convert import SPM_FILENAME, read_model_metadata

log = logging.getLogger(__name__)

LANG_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")  # NLLB language tokens, e.g. deu_Latn
DEVICES = ("auto", "cpu", "cuda")
COMPUTE_TYPES = (
    "auto", "default", "int8", "int8_float16", "int8_bfloat16", "int8_float32", "int16", "float16", "bfloat16",
    "float32",
)
MIN_OOM_BUDGET = 64  # below this token budget an out-of-memory error is not retried

_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc (C0, DEL, C1)
_WHITESPACE = re.compile(r"\s+")


def clean_source(text: str | None) -> str:
    """Normalise a source text: NFC, control characters as spaces, no lone surrogates, single spaces.

    Lone surrogates (invalid UTF-8 smuggled in via ``surrogateescape``) cannot be encoded and would
    crash the tokenizer; control characters are invisible noise that still costs tokens. Format
    characters (category Cf, e.g. zero-width joiners) are kept: some scripts need them. The result is
    also the deduplication and cache key, so "a  dog" and "a dog\\n" are translated once.
    """
    if not text:
        return ""
    text = _CONTROL.sub(" ", _SURROGATES.sub("", text))
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


@dataclass(frozen=True)
class EngineSettings:
    """How a translator is loaded and how it decodes. Hashable: it keys the per-process cache."""

    device: str = "auto"  # "auto" | "cpu" | "cuda"
    device_index: tuple[int, ...] = (0,)  # several GPUs: one translator replica per index
    compute_type: str = "auto"  # CT2 compute type; "auto" = int8 on CPU, int8_float16 on GPU
    # Parallel batches (replicas, sharing the weights) per device and threads per batch on CPU; 0 = auto:
    # on CPU one batch per core, one thread each (``thread_split``), on a GPU one batch.
    inter_threads: int = 0
    intra_threads: int = 0
    max_batch_tokens: int = 2048  # token budget per batch (batch_type="tokens")
    max_input_tokens: int = 256  # longer inputs are truncated and flagged
    beam_size: int = 1  # 1 = greedy (what the mBLIP reference used)
    patience: float = 1.0  # beam search: stop after beam_size * patience finished hypotheses
    length_penalty: float = 1.0  # beam search: exponent of the length normalisation
    repetition_penalty: float = 1.0  # > 1 penalises tokens already generated; 1 = off
    no_repeat_ngram_size: int = 0  # 0 = off
    max_length_ratio: float = 3.0  # hard cap on output pieces = ratio * input pieces + 10 (anti-loop)
    sampling_topk: int = 1  # 1 = no sampling (deterministic)
    sampling_temperature: float = 1.0  # only used when sampling_topk != 1
    # True: batches hold inputs of one length only (no padding), so a translation or score never
    # depends on what it was batched with and a cache or a partial regeneration gives the rows of a
    # fresh run. False: batches of similar lengths, padded (faster on small models, see docs/performance.md;
    # rows then depend on batch composition, rarely for translations and by ~1e-3 for scores).
    batch_invariant: bool = True
    # Output-vocabulary restriction: decode over the entries of the model's ``vmap.txt`` (see
    # ``pipeline/nllb/vmap.py``) that match the source tokens, instead of all 256k. False = off.
    use_vmap: bool = False

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ValueError(f"translation.device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.compute_type not in COMPUTE_TYPES:
            raise ValueError(f"translation.compute_type {self.compute_type!r} is not one of {', '.join(COMPUTE_TYPES)}")
        if self.max_batch_tokens < 1 or self.max_input_tokens < 3:
            raise ValueError("translation.max_batch_tokens must be >= 1 and translation.max_input_tokens >= 3")
        if self.inter_threads < 0 or self.intra_threads < 0:
            raise ValueError("translation.inter_threads and translation.intra_threads must be >= 0 (0 = auto)")

    def thread_split(self, device: str, cores: int | None = None) -> tuple[int, int]:
        """``(inter_threads, intra_threads)`` as CTranslate2 gets them on ``device``.

        Auto (0) on the CPU runs one batch per core with one thread each: at the NLLB-600M shape on a
        chunk of 2,000 strings that gave 1.47x the tokens/s of one batch on both cores of a 2-core machine
        (429.1 vs 291.9, `mblip bench translate --levers`), and outputs do not depend on the split (batches are
        padding-free and decoded independently; tested). Only one of the two given: the other fills the
        cores. A GPU runs one batch at a time unless ``inter_threads`` says otherwise, and so does the CPU
        with the vocabulary map (``use_vmap``).
        """
        if device != "cpu":
            return max(1, self.inter_threads), self.intra_threads
        cores = cores or available_cores()
        inter, intra = self.inter_threads, self.intra_threads
        if self.use_vmap and not inter:
            # CTranslate2 4.8.5 aborted (malloc: invalid size) with a map of identity rules (what
            # pipeline.nllb.vmap writes unless --no-copy-source) on two CPU replicas: one batch at a time
            # unless inter_threads is set
            inter = 1
        if inter and intra:
            return inter, intra
        if inter:
            return inter, max(1, cores // inter)
        if intra:
            return max(1, cores // intra), intra
        return cores, 1

    def resolve(self) -> tuple[str, str]:
        """``(device, compute_type)`` as they will run on this machine, without loading a model.

        ``auto`` is CUDA when CTranslate2 sees a GPU, else the CPU; the compute type is the requested
        one or its closest supported fallback on that device (``resolve_compute_type``).
        """
        import ctranslate2

        device = self.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        elif device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
            raise ValueError("translation.device is 'cuda' but CTranslate2 sees no CUDA device; use 'cpu' or 'auto'")
        index = self.device_index[0] if self.device_index else 0
        supported = set(ctranslate2.get_supported_compute_types(device, index))
        return device, resolve_compute_type(self.compute_type, device, supported)

    def decoding_key(self) -> str:
        """The decoding settings that change outputs (part of the translation cache key)."""
        return (
            f"beam={self.beam_size},pat={self.patience},lp={self.length_penalty},"
            f"rp={self.repetition_penalty},nrng={self.no_repeat_ngram_size},"
            f"mlr={self.max_length_ratio},topk={self.sampling_topk},temp={self.sampling_temperature},"
            # entries made with padded batches (the old default, still the key without a suffix) are
            # never served to a batch-invariant run; vmap only when on
            f"maxin={self.max_input_tokens},suppress=langcodes" + (",nopad" if self.batch_invariant else "")
            + (",vmap" if self.use_vmap else "")
        )


@dataclass
class Translation:
    text: str
    truncated: bool = False  # the source was longer than max_input_tokens and was cut
    tokens: int = 0  # output pieces, without the language token
    log_prob: float | None = None  # CT2's hypothesis score (its log-prob over the length normalisation)
    decoded_tokens: int = 0  # tokens the decoder produced (cost), before dropping special tokens
    # ``score(source, text)``'s value, known from the decoding itself (see ``NllbTranslator.own_score``)
    mean_log_prob: float | None = None


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, e.g. a container's or Dask worker's share)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def is_out_of_memory(error: BaseException) -> bool:
    """CT2 reports CUDA allocation failures as RuntimeError("... out of memory ...")."""
    return isinstance(error, (RuntimeError, MemoryError)) and "out of memory" in str(error).lower()


def run_with_oom_retry(run: Callable[[list[int], int], list], items: list[int], budget: int,
                       lengths: list[int]) -> list:
    """``run(items, budget)``; on out-of-memory, retry with half the token budget (see ``retry_smaller``)."""
    try:
        return run(items, budget)
    except (RuntimeError, MemoryError) as e:
        if not is_out_of_memory(e):
            raise
        return retry_smaller(run, items, budget, lengths, e)


def retry_smaller(run: Callable[[list[int], int], list], items: list[int], failed_budget: int, lengths: list[int],
                  error: BaseException) -> list:
    """After ``run`` ran out of memory at ``failed_budget`` tokens: halve the budget and the items.

    A smaller token budget means smaller batches inside CT2; splitting the items too means a retry
    never re-sends more than failed. Gives up (re-raises ``error``) below ``MIN_OOM_BUDGET`` tokens or
    when the longest single input no longer fits.
    """
    smaller = failed_budget // 2
    longest = max(lengths[i] for i in items)
    if smaller < MIN_OOM_BUDGET or smaller < longest:
        log.error("out of memory at token budget %d (longest input %d tokens); giving up", failed_budget, longest)
        raise error
    log.warning("out of memory at token budget %d; retrying %d inputs with %d", failed_budget, len(items), smaller)
    mid = len(items) // 2
    halves = [items] if len(items) == 1 else [items[:mid], items[mid:]]
    return [r for half in halves for r in run_with_oom_retry(run, half, smaller, lengths)]


# Closest supported type when a device lacks the requested one (CPUs without fp16/bf16 kernels).
_FALLBACK = {
    "float16": "float32", "bfloat16": "float32", "int8_float16": "int8", "int8_bfloat16": "int8",
    "int8_float32": "int8", "int16": "float32", "int8": "float32",
}


def resolve_compute_type(requested: str, device: str, supported: set[str]) -> str:
    """The compute type that will actually run: ``requested``, or its closest supported fallback.

    ``auto`` means int8 on CPU and int8_float16 on GPU (the fast choices for NLLB). Half precision on
    a CPU without fp16/bf16 kernels falls back to float32 (int8_float16 to int8): older CT2 did this
    silently, newer CT2 refuses; here it is explicit and logged.
    """
    wanted = requested
    if wanted == "auto":
        wanted = "int8" if device == "cpu" else "int8_float16"
    if wanted == "default" or wanted in supported:
        return wanted
    effective = wanted
    while effective not in supported and effective in _FALLBACK:
        effective = _FALLBACK[effective]
    if effective not in supported:
        raise ValueError(
            f"translation.compute_type {requested!r} cannot run on {device} (supported: {', '.join(sorted(supported))})"
        )
    log.warning("compute type %s is not supported on %s; running as %s", wanted, device, effective)
    return effective


LENGTH_BUCKET = 8  # padded mode: source tokens per length bucket; each bucket gets its own decoding cap


def padded_length_buckets(order: list[int], lengths: list[int], budget: int) -> list[list[int]]:
    """Padded mode: cut indices sorted by length into buckets of similar length (``LENGTH_BUCKET``
    source tokens); neighbouring buckets smaller than one token budget are merged, so batches stay
    full. Faster than ``length_buckets``, but a result then depends on its batch companions."""
    buckets: list[list[int]] = []
    current: list[int] = []
    current_tokens, current_key = 0, None
    for i in order:
        key = (lengths[i] - 1) // LENGTH_BUCKET
        if current and key != current_key and current_tokens >= budget:
            buckets.append(current)
            current, current_tokens = [], 0
        current.append(i)
        current_tokens += lengths[i]
        current_key = key
    if current:
        buckets.append(current)
    return buckets


def length_buckets(order: list[int], lengths: list[int], budget: int) -> list[list[int]]:
    """Cut indices sorted by length into buckets of EQUAL length, each at most ``budget`` tokens.

    No bucket holds two lengths, so no input is ever padded. Padding changes the floating-point
    reduction order of attention over the padded positions; rarely, that flips a greedy choice (and
    always moves scores by up to ~1e-3): with padding, a translation depended on what it was batched
    with, so a cache filled by another run, or a regeneration of some languages only, gave rows that
    a fresh run does not. Equal-length buckets also give each bucket the exact decoding cap.
    """
    return padding_free_groups(order, [(n,) for n in lengths], lengths, budget)


def padding_free_groups(order: list[int], shapes: list[tuple[int, ...]], tokens: list[int],
                        budget: int) -> list[list[int]]:
    """Indices in ``order`` cut into groups of one shape (e.g. (source length, target length)),
    each group at most ``budget`` tokens (``tokens[i]`` each; a single larger item gets its own)."""
    groups: dict[tuple[int, ...], list[list[int]]] = {}
    used: dict[tuple[int, ...], int] = {}
    for i in order:
        shape = shapes[i]
        current = groups.setdefault(shape, [[]])
        if current[-1] and used[shape] + tokens[i] > budget:
            current.append([])
            used[shape] = 0
        current[-1].append(i)
        used[shape] = used.get(shape, 0) + tokens[i]
    return [g for shape in sorted(groups) for g in groups[shape]]


def read_vocabulary(model_dir: str | Path) -> list[str]:
    """The target vocabulary of a converted model (``shared_vocabulary.json`` or ``.txt``)."""
    import json

    model_dir = Path(model_dir)
    for name in ("shared_vocabulary.json", "target_vocabulary.json"):
        if (model_dir / name).exists():
            return json.loads((model_dir / name).read_text(encoding="utf-8"))
    for name in ("shared_vocabulary.txt", "target_vocabulary.txt"):
        if (model_dir / name).exists():
            return (model_dir / name).read_text(encoding="utf-8").split("\n")
    raise FileNotFoundError(f"{model_dir} has no vocabulary file (shared_vocabulary.json); reconvert the model")


def model_languages(model_dir: str | Path) -> frozenset[str]:
    """The NLLB codes a converted model can translate into and from.

    A model trained on only some languages records them in ``mblip_model.json`` (``languages``, written
    by ``convert_nllb``; the shipped Multi30k model: ces, deu, eng, fra); its vocabulary still holds all of
    NLLB's 202 language tokens, which it never learned. Otherwise (NLLB-200) every language token of the
    vocabulary (``shared_vocabulary.json``: entries like ``deu_Latn``).
    """
    recorded = read_model_metadata(model_dir).get("languages")
    if recorded:
        return frozenset(recorded)
    return frozenset(t for t in read_vocabulary(model_dir) if LANG_CODE.fullmatch(t))


class NllbTranslator:
    """CTranslate2 translator plus the sentencepiece model from a converted NLLB directory."""

    def __init__(self, model_dir: str | Path, settings: EngineSettings = EngineSettings()):
        import ctranslate2
        import sentencepiece as spm

        self.model_dir = Path(model_dir)
        spm_path = self.model_dir / SPM_FILENAME
        if not (self.model_dir / "model.bin").exists() or not spm_path.exists():
            raise FileNotFoundError(
                f"{self.model_dir} is not a converted NLLB model (needs model.bin and {SPM_FILENAME}); "
                "create one with `mblip convert-nllb MODEL OUT`"
            )
        self.settings = settings
        device, compute_type = settings.resolve()
        self.device = device
        self.threads = inter_threads, intra_threads = settings.thread_split(device)
        self.translator = ctranslate2.Translator(
            str(self.model_dir),
            device=device,
            device_index=list(settings.device_index),
            compute_type=compute_type,
            inter_threads=inter_threads,
            intra_threads=intra_threads,
        )
        # CT2 silently runs half precision as float32 on CPU: log what actually runs.
        self.compute_type = self.translator.compute_type
        log.info(
            "loaded %s on %s %s, requested compute type %s, effective %s, %d batch(es) at a time, %d thread(s) each",
            self.model_dir, device, list(settings.device_index), settings.compute_type, self.compute_type,
            inter_threads, intra_threads,
        )
        self.sp = spm.SentencePieceProcessor(model_file=str(spm_path))
        self.special_tokens = frozenset({"<mask>", "<s>", "<pad>", "</s>", "<unk>"})
        self.language_tokens = frozenset(t for t in read_vocabulary(self.model_dir) if LANG_CODE.fullmatch(t))
        # Never decode a language code or <mask> after the forced target token: they are vocabulary
        # entries, not text (NLLB emits them on inputs it cannot handle; a random model, constantly).
        self.suppressed = [[t] for t in sorted(self.language_tokens)] + [["<mask>"]]

        self.metadata = read_model_metadata(self.model_dir)
        # Inputs and outputs must fit the model's position encodings (1024 for NLLB-200).
        self.max_positions = int(self.metadata.get("max_positions") or 1024)
        self.max_input_tokens = min(settings.max_input_tokens, self.max_positions)
        # NLLB codes the model was trained on when it covers only some (the shipped Multi30k model);
        # None: all of them (NLLB-200).
        self.languages = frozenset(self.metadata["languages"]) if self.metadata.get("languages") else None
        if settings.use_vmap and not (self.model_dir / "vmap.txt").is_file():
            raise FileNotFoundError(
                f"translation.use_vmap is on but {self.model_dir} has no vmap.txt; build one with "
                "`python -m pipeline.nllb.vmap MODEL_DIR TEXT_FILES...` or turn use_vmap off"
            )
        # What the model was asked to do (inputs sent to CT2 per kind): lets callers and tests check
        # that a re-decision scored without translating.
        self.usage = {"translate": 0, "score": 0}
        # Wall seconds spent inside CTranslate2 per kind (tokenisation excluded): the benchmarks' share of a
        # stage's time that is the model's.
        self.model_seconds = {"translate": 0.0, "score": 0.0}

    # -- identity -----------------------------------------------------------------------------
    def cache_key(self) -> str:
        """Everything that changes outputs: model, revision, quantisation, compute type, decoding."""
        m = self.metadata
        return (
            f"model={m.get('model_id')}@{m.get('revision')}#{m.get('source_fingerprint')};"
            f"q={m.get('quantization')};ct={self.compute_type};{self.settings.decoding_key()}"
        )

    def language_token(self, code: str) -> str:
        """The vocabulary token of ``code`` (an NLLB code, or a project code like ``de``)."""
        if code in self.language_tokens:
            return code

        try:
            token = get_language(code).nllb
        except UnknownLanguageError:
            token = None
        if token in self.language_tokens:
            return token

        valid = ", ".join(sorted(lang.nllb for lang in load_languages() if lang.nllb in self.language_tokens))
        raise UnknownLanguageError(
            f"language {code!r} is not in the vocabulary of {self.model_dir}; valid codes: {valid}"
        )

    # -- tokenisation -------------------------------------------------------------------------
    def encode(self, texts: list[str], src_lang: str | list[str]) -> tuple[list[list[str]], list[bool]]:
        """Source token lists ``[src] + pieces + </s>`` and whether each input was truncated.

        ``src_lang``: one language token for all texts, or one per text.
        """
        limit = self.max_input_tokens - 2
        sources = [src_lang] * len(texts) if isinstance(src_lang, str) else src_lang
        pieces = self.sp.encode([clean_source(t) for t in texts], out_type=str)
        tokens, truncated = [], []
        for p, src in zip(pieces, sources):
            truncated.append(len(p) > limit)
            tokens.append([src, *p[:limit], "</s>"])
        return tokens, truncated

    def language_tokens_for(self, codes: str | list[str], n: int, what: str = "target") -> list[str]:
        """``n`` language tokens from one code or a list of ``n`` codes (validated once per distinct code)."""
        if isinstance(codes, str):
            return [self.language_token(codes)] * n
        if len(codes) != n:
            raise ValueError(f"{n} texts but {len(codes)} {what} languages")
        known = {code: self.language_token(code) for code in set(codes)}
        return [known[code] for code in codes]

    def decode(self, pieces: list[list[str]]) -> list[str]:
        return self.sp.decode(pieces)

    # -- translation --------------------------------------------------------------------------
    def translate(
        self, texts: list[str], src_lang: str | list[str], tgt_lang: str | list[str], *,
        min_decoding_length: int | None = None, max_decoding_length: int | None = None,
    ) -> list[Translation]:
        """Translate ``texts`` (results in input order). Empty or blank inputs give empty outputs.

        ``src_lang`` and ``tgt_lang`` are one language for all texts, or one per text: languages are
        per-example tokens in CT2, so a chunk spread over 95 languages still fills whole batches.
        ``min_decoding_length``/``max_decoding_length`` override the relative cap with fixed values
        in output pieces (the benchmark forces equal output lengths with them).
        """
        if not texts:
            return []
        sources = self.language_tokens_for(src_lang, len(texts), "source")
        targets = self.language_tokens_for(tgt_lang, len(texts), "target")
        cleaned = [clean_source(t) for t in texts]
        todo = [i for i, c in enumerate(cleaned) if c]
        out: list[Translation] = [Translation(text="") for _ in texts]
        if not todo:
            return out
        tokens, truncated = self.encode([cleaned[i] for i in todo], [sources[i] for i in todo])
        self.usage["translate"] += len(tokens)
        started = time.perf_counter()
        results = self._translate_tokens(tokens, [targets[i] for i in todo], min_decoding_length, max_decoding_length)
        self.model_seconds["translate"] += time.perf_counter() - started
        pieces, scores, decoded, own_possible = [], [], [], []
        for k, (i, result) in enumerate(zip(todo, results)):
            hyp = result.hypotheses[0]
            if hyp and hyp[0] == targets[i]:
                hyp = hyp[1:]
            if max_decoding_length is None:
                # A bucket decodes up to the cap of its longest source; cut each output to the cap of its
                # own source, so a translation never depends on what it was batched with (for greedy
                # decoding this equals decoding with its own cap; resumed runs and caches rely on it).
                hyp = hyp[: self._decoding_cap(len(tokens[k])) - 1]
            stopped = len(hyp) < (max_decoding_length or self._decoding_cap(len(tokens[k])) - 1)
            decoded.append(len(hyp))
            # Language codes and <mask> are vocabulary entries, not text: never let them into output.
            hyp = [tok for tok in hyp if tok not in self.special_tokens and not LANG_CODE.fullmatch(tok)]
            pieces.append(hyp)
            scores.append(result.scores[0] if result.scores else None)
            own_possible.append(stopped and len(hyp) == decoded[-1] and scores[-1] is not None)
        texts_out = self.sp.decode(pieces)
        own = self.own_scores(scores, pieces, texts_out, own_possible, forced_min=bool(min_decoding_length))
        for i, trunc, hyp, text, score, n, value in zip(todo, truncated, pieces, texts_out, scores, decoded, own):
            out[i] = Translation(text=text, truncated=trunc, tokens=len(hyp), log_prob=score, decoded_tokens=n,
                                 mean_log_prob=value)
        return out

    def own_scores(self, scores: list[float | None], pieces: list[list[str]], texts: list[str],
                   stopped: list[bool], forced_min: bool = False) -> list[float | None]:
        """``score(source, text)`` of each output from its decoding's own score, without a second pass; None
        where the two differ.

        Greedy decoding's score is the log-prob of the pieces and ``</s>`` over (pieces + 2) (CTranslate2
        counts the forced language token in the length); ``score`` averages the same log-probs over
        (pieces + 1). They are the same number (to int8 rounding: on Multi30k val with the shipped model at most
        0.014 nats per token apart, 0.003 on average) when the decoder stopped by itself (``stopped``),
        nothing changed its distribution (repetition penalty, temperature, the vocabulary map, beams with
        a length penalty, a forced minimum length that masks ``</s>``) and its pieces are the ones ``score``
        gets by encoding ``text`` again.
        """
        s = self.settings
        if forced_min or s.repetition_penalty != 1 or s.sampling_temperature != 1 or s.use_vmap \
                or s.length_penalty != 1 or s.sampling_topk != 1:
            return [None] * len(scores)
        again = self.sp.encode([clean_source(t) for t in texts], out_type=str)
        return [score * (len(p) + 2) / (len(p) + 1) if ok and p == a else None
                for score, p, a, ok in zip(scores, pieces, again, stopped)]

    def _decoding_cap(self, source_len: int) -> int:
        """Hard cap on decoded tokens (target-language token included) for a source of this length."""
        return min(int(self.settings.max_length_ratio * source_len) + 10, self.max_positions - 1)

    def _decoding_options(self, source_len: int, min_len: int | None, max_len: int | None) -> dict:
        s = self.settings
        # +1: CT2 counts the forced target-language token of the prefix as a decoded token.
        cap = min(max_len + 1, self.max_positions - 1) if max_len is not None else self._decoding_cap(source_len)
        return dict(
            beam_size=s.beam_size, patience=s.patience, length_penalty=s.length_penalty,
            repetition_penalty=s.repetition_penalty, no_repeat_ngram_size=s.no_repeat_ngram_size,
            sampling_topk=s.sampling_topk, sampling_temperature=s.sampling_temperature,
            max_decoding_length=cap, min_decoding_length=min(cap, (min_len or 0) + 1),
            suppress_sequences=self.suppressed, use_vmap=s.use_vmap,
            max_input_length=0, return_scores=True,
        )

    def _translate_tokens(self, tokens: list[list[str]], tgts: list[str], min_len: int | None,
                          max_len: int | None) -> list:
        """CT2 results for ``tokens`` in input order, bucketed by length, submitted asynchronously."""
        lengths = [len(t) for t in tokens]
        order = sorted(range(len(tokens)), key=lengths.__getitem__)
        budget = max(self.settings.max_batch_tokens, max(lengths))
        buckets = (length_buckets if self.settings.batch_invariant else padded_length_buckets)(order, lengths, budget)

        def submit(items: list[int], token_budget: int, asynchronous: bool):
            options = self._decoding_options(max(lengths[i] for i in items), min_len, max_len)
            return self.translator.translate_batch(
                [tokens[i] for i in items], target_prefix=[[tgts[i]] for i in items],
                max_batch_size=token_budget, batch_type="tokens", asynchronous=asynchronous, **options,
            )

        pending = [(items, submit(items, budget, True)) for items in buckets]
        results: list = [None] * len(tokens)
        for items, futures in pending:
            try:
                done = [f.result() for f in futures]
            except (RuntimeError, MemoryError) as e:
                if not is_out_of_memory(e):
                    raise
                done = retry_smaller(lambda it, b: submit(it, b, False), items, budget, lengths, e)
            for i, r in zip(items, done):
                results[i] = r
        return results

    def score(
        self, src_texts: list[str], tgt_texts: list[str], src_lang: str | list[str], tgt_lang: str | list[str]
    ) -> list[float]:
        """Mean log-probability per target token of ``tgt_texts`` given ``src_texts`` (forced decoding).

        ``src_lang``/``tgt_lang``: one language for all pairs or one per pair (a reverse score has the
        translation's language as source). CT2's ``score_batch`` adds the decoder start token and
        ``</s>`` itself; the target language token is given explicitly and excluded from the mean.
        Batches are cut by the same token budget as translation (CT2 sorts by length within it).
        """
        if not src_texts:
            return []
        srcs = self.language_tokens_for(src_lang, len(src_texts), "source")
        tgts = self.language_tokens_for(tgt_lang, len(tgt_texts), "target")
        src_tokens, _ = self.encode(src_texts, srcs)
        limit = self.max_positions - 2
        pieces = self.sp.encode([clean_source(t) for t in tgt_texts], out_type=str)
        tgt_tokens = [[tgt, *p[:limit]] for tgt, p in zip(tgts, pieces)]
        self.usage["score"] += len(src_tokens)
        started = time.perf_counter()
        try:
            return self._score_tokens(src_tokens, tgt_tokens)
        finally:
            self.model_seconds["score"] += time.perf_counter() - started

    def _score_tokens(self, src_tokens: list[list[str]], tgt_tokens: list[list[str]]) -> list[float]:
        if not self.settings.batch_invariant:
            results = self.translator.score_iterable(
                src_tokens, tgt_tokens, max_batch_size=self.settings.max_batch_tokens, batch_type="tokens"
            )
            return [_mean_log_prob(r) for r in results]
        # Batches of one (source length, target length): no padding, so a score does not depend on
        # what it is batched with (see ``length_buckets``).
        shapes = [(len(a), len(b)) for a, b in zip(src_tokens, tgt_tokens)]
        budget = max(self.settings.max_batch_tokens, *(a + b for a, b in shapes))
        scores: list[float] = [float("nan")] * len(src_tokens)
        # Every group submitted at once, so the replicas (``inter_threads``) score groups side by side.
        pending = [(items, self.translator.score_batch(
            [src_tokens[i] for i in items], [tgt_tokens[i] for i in items],
            max_batch_size=budget, batch_type="tokens", asynchronous=True,
        )) for items in padding_free_groups(list(range(len(shapes))), shapes, [a + b for a, b in shapes], budget)]
        for items, futures in pending:
            for i, future in zip(items, futures):
                scores[i] = _mean_log_prob(future.result())
        return scores


def _mean_log_prob(result) -> float:
    lp = result.log_probs[1:]  # skip the forced language token
    return float(sum(lp) / len(lp)) if lp else float("nan")


@lru_cache(maxsize=4)
def _cached_translator(model_dir: str, settings: EngineSettings, pid: int) -> NllbTranslator:
    return NllbTranslator(model_dir, settings)


def load_translator(model_dir: str | Path, settings: EngineSettings = EngineSettings()) -> NllbTranslator:
    """One translator per (process, model, settings): workers call this instead of receiving a model.

    The pid is part of the key so a forked worker never reuses its parent's CT2 handle.
    """
    return _cached_translator(str(Path(model_dir).resolve()), settings, os.getpid())

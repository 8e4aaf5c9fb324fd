"""The translation engine: sentencepiece + CTranslate2, one instance per worker process.

NLLB conventions (see ``shared/reference``/CTranslate2 docs): source tokens are
``[src_code] + pieces + ["</s>"]``; the target prefix is ``[tgt_code]``; the first output token (the
language code) is dropped. The target language is always forced: without it NLLB produces garbage.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pipeline.nllb.build import SPM_FILENAME

log = logging.getLogger(__name__)

LANG_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")  # NLLB language tokens, e.g. deu_Latn


@dataclass(frozen=True)
class EngineSettings:
    """How a translator is loaded and how it decodes. Hashable: it keys the per-process cache."""

    device: str = "auto"  # "auto" | "cpu" | "cuda"
    device_index: tuple[int, ...] = (0,)  # several GPUs: one translator replica per index
    compute_type: str = "auto"  # CT2 compute type; "auto" = int8 on CPU, int8_float16 on GPU
    inter_threads: int = 1  # parallel batches (replicas) per device
    intra_threads: int = 0  # threads per batch on CPU; 0 = CT2 default (all cores)
    max_batch_tokens: int = 2048  # token budget per batch (batch_type="tokens")
    max_input_tokens: int = 256  # longer inputs are truncated and flagged
    beam_size: int = 1  # 1 = greedy (what the mBLIP reference used)
    patience: float = 1.0
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0  # 0 = off
    max_length_ratio: float = 3.0  # hard cap on output pieces = ratio * input pieces + 10 (anti-loop)
    sampling_topk: int = 1  # 1 = no sampling

    def decoding_key(self) -> str:
        """The decoding settings that change outputs (part of the translation cache key)."""
        return (
            f"beam={self.beam_size},pat={self.patience},lp={self.length_penalty},"
            f"rp={self.repetition_penalty},nrng={self.no_repeat_ngram_size},"
            f"mlr={self.max_length_ratio},topk={self.sampling_topk},maxin={self.max_input_tokens}"
        )


@dataclass
class Translation:
    text: str
    truncated: bool = False
    tokens: int = 0  # output pieces, without the language token
    log_prob: float | None = None  # cumulative log prob from CT2 when available


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
        device = settings.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = settings.compute_type
        if compute_type == "auto":
            compute_type = "int8" if device == "cpu" else "int8_float16"
        self.device = device
        self.translator = ctranslate2.Translator(
            str(self.model_dir),
            device=device,
            device_index=list(settings.device_index),
            compute_type=compute_type,
            inter_threads=settings.inter_threads,
            intra_threads=settings.intra_threads,
        )
        # CT2 silently runs half precision as float32 on CPU: log what actually runs.
        self.compute_type = self.translator.compute_type
        log.info(
            "loaded %s on %s, requested compute type %s, effective %s",
            self.model_dir, device, compute_type, self.compute_type,
        )
        self.sp = spm.SentencePieceProcessor(model_file=str(spm_path))
        self.special_tokens = frozenset({"<mask>", "<s>", "<pad>", "</s>", "<unk>"})
        from pipeline.nllb.convert import read_model_metadata

        # Inputs and outputs must fit the model's position encodings (1024 for NLLB-200).
        self.max_positions = int(read_model_metadata(self.model_dir).get("max_positions") or 1024)
        self.max_input_tokens = min(settings.max_input_tokens, self.max_positions)

    # -- tokenisation -------------------------------------------------------------------------
    def encode(self, texts: list[str], src_lang: str) -> tuple[list[list[str]], list[bool]]:
        """Source token lists ``[src] + pieces + </s>`` and whether each input was truncated."""
        limit = self.max_input_tokens - 2
        pieces = self.sp.encode(texts, out_type=str)
        tokens, truncated = [], []
        for p in pieces:
            truncated.append(len(p) > limit)
            tokens.append([src_lang, *p[:limit], "</s>"])
        return tokens, truncated

    def decode(self, pieces: list[list[str]]) -> list[str]:
        return self.sp.decode(pieces)

    # -- translation --------------------------------------------------------------------------
    def translate(self, texts: list[str], src_lang: str, tgt_lang: str) -> list[Translation]:
        """Translate ``texts`` (results in input order). Empty inputs give empty outputs."""
        if not texts:
            return []
        s = self.settings
        tokens, truncated = self.encode(texts, src_lang)
        max_in = max(len(t) for t in tokens)
        results = self.translator.translate_iterable(
            tokens,
            target_prefix=[[tgt_lang]] * len(tokens),
            max_batch_size=s.max_batch_tokens,
            batch_type="tokens",
            beam_size=s.beam_size,
            patience=s.patience,
            length_penalty=s.length_penalty,
            repetition_penalty=s.repetition_penalty,
            no_repeat_ngram_size=s.no_repeat_ngram_size,
            max_decoding_length=min(int(s.max_length_ratio * max_in) + 10, self.max_positions - 1),
            sampling_topk=s.sampling_topk,
            return_scores=True,
        )
        out: list[Translation] = []
        for text, trunc, result in zip(texts, truncated, results):
            hyp = result.hypotheses[0]
            if hyp and hyp[0] == tgt_lang:
                hyp = hyp[1:]
            # Language codes and <mask> are vocabulary entries, not text: never let them into output.
            hyp = [tok for tok in hyp if tok not in self.special_tokens and not LANG_CODE.fullmatch(tok)]
            if not text.strip():
                out.append(Translation(text="", truncated=False, tokens=0, log_prob=None))
                continue
            score = result.scores[0] if result.scores else None
            out.append(Translation(text=self.sp.decode(hyp), truncated=trunc, tokens=len(hyp), log_prob=score))
        return out

    def score(self, src_texts: list[str], tgt_texts: list[str], src_lang: str, tgt_lang: str) -> list[float]:
        """Mean log-probability per target token of ``tgt_texts`` given ``src_texts`` (forced decoding).

        CT2's ``score_batch`` adds the decoder start token and ``</s>`` itself; the target language
        token is given explicitly and excluded from the mean.
        """
        if not src_texts:
            return []
        src_tokens, _ = self.encode(src_texts, src_lang)
        tgt_tokens = [[tgt_lang, *p] for p in self.sp.encode(tgt_texts, out_type=str)]
        results = self.translator.score_iterable(
            src_tokens, tgt_tokens, max_batch_size=self.settings.max_batch_tokens, batch_type="tokens"
        )
        scores = []
        for r in results:
            lp = r.log_probs[1:]  # skip the forced language token
            scores.append(float(sum(lp) / len(lp)) if lp else float("nan"))
        return scores


@lru_cache(maxsize=4)
def _cached_translator(model_dir: str, settings: EngineSettings, pid: int) -> NllbTranslator:
    return NllbTranslator(model_dir, settings)


def load_translator(model_dir: str | Path, settings: EngineSettings = EngineSettings()) -> NllbTranslator:
    """One translator per (process, model, settings): workers call this instead of receiving a model.

    The pid is part of the key so a forked worker never reuses its parent's CT2 handle.
    """
    return _cached_translator(str(Path(model_dir).resolve()), settings, os.getpid())

"""What each benchmark is: languages, split, task kind, metric, which languages the reported mean leaves out.

Generation settings are the reference evaluation's (mBLIP public code): captions with 5 beams, 1 to 50
new tokens, length penalty 1; short answers with 5 beams, 1 to 10 new tokens, length penalty -1
(favours short answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GenerationSettings:
    num_beams: int = 5
    max_new_tokens: int = 10
    min_new_tokens: int = 1
    length_penalty: float = -1.0


CAPTION_GENERATION = GenerationSettings(num_beams=5, max_new_tokens=50, min_new_tokens=1, length_penalty=1.0)
ANSWER_GENERATION = GenerationSettings(num_beams=5, max_new_tokens=10, min_new_tokens=1, length_penalty=-1.0)


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    title: str
    languages: tuple[str, ...]
    split: str  # default file split
    metric: str  # "cider" | "vqa_accuracy" | "maxm_accuracy" | "pope" | "vqav2_accuracy" | "chair"
    generation: GenerationSettings
    # Languages left out of the reported mean (the paper reports English on its own).
    mean_excludes: tuple[str, ...] = ("en",)


XM3600_LANGUAGES = (
    "ar bn cs da de el en es fa fi fil fr he hi hr hu id it ja ko mi nl no pl pt quz ro ru sv sw te th tr uk vi zh"
).split()

BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("xm3600", "XM3600 (CIDEr x100)", tuple(XM3600_LANGUAGES), "test", "cider", CAPTION_GENERATION),
        BenchmarkSpec(
            "xflickrco",
            "xFlickrCO (CIDEr x100)",
            ("en", "de", "es", "id", "ja", "ru", "tr", "zh"),
            "test",
            "cider",
            CAPTION_GENERATION,
        ),
        BenchmarkSpec(
            "xgqa",
            "xGQA (accuracy %)",
            ("en", "bn", "de", "id", "ko", "pt", "ru", "zh"),
            "test",
            "vqa_accuracy",
            ANSWER_GENERATION,
        ),
        BenchmarkSpec(
            "maxm",
            "MaXM (accuracy %)",
            ("en", "fr", "hi", "iw", "ro", "th", "zh"),
            "test",
            "maxm_accuracy",
            ANSWER_GENERATION,
        ),
        BenchmarkSpec(
            "xvnli", "XVNLI (accuracy %)", ("en", "ar", "es", "fr", "ru"), "test", "vqa_accuracy", ANSWER_GENERATION
        ),
        BenchmarkSpec(
            "marvl",
            "MaRVL (accuracy %)",
            ("en", "id", "sw", "ta", "tr", "zh"),
            "test",
            "vqa_accuracy",
            ANSWER_GENERATION,
        ),
        # POPE is English only: its three negative-sampling subsets take the place of languages.
        BenchmarkSpec(
            "pope", "POPE (accuracy %)", ("random", "popular", "adversarial"), "test", "pope", ANSWER_GENERATION, ()
        ),
        # English baselines, so that multilingual scores can be read against English: COCO captions on the
        # Karpathy test split and VQAv2 val. English only, so the mean is the English score.
        BenchmarkSpec("coco", "COCO Karpathy test (CIDEr x100)", ("en",), "test", "cider", CAPTION_GENERATION, ()),
        BenchmarkSpec(
            "vqav2", "VQAv2 val (VQA accuracy %)", ("en",), "val2014", "vqav2_accuracy", ANSWER_GENERATION, ()
        ),
        # Object hallucination in English captions of COCO images (Rohrbach et al. 2018), lower is better.
        BenchmarkSpec("chair", "CHAIR (CHAIRs %, lower is better)", ("en",), "test", "chair", CAPTION_GENERATION, ()),
    )
}


def get_benchmark(name: str) -> BenchmarkSpec:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}") from None


def resolve_languages(spec: BenchmarkSpec, languages: Sequence[str] | None) -> tuple[str, ...]:
    """The requested languages (default: all of the benchmark's), checked against the benchmark."""
    if not languages:
        return spec.languages
    unknown = [lang for lang in languages if lang not in spec.languages]
    if unknown:
        raise ValueError(f"{spec.name} has no language {', '.join(unknown)}; it has {', '.join(spec.languages)}")
    return tuple(dict.fromkeys(languages))

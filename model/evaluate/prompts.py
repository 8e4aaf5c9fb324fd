"""Benchmark prompts as the mBLIP reference evaluation used them (Geigle et al. 2024, Sec. 5; public code).

The training templates live in ``model/templates.py``; evaluation uses the fixed prompts of the paper's
evaluation instead, so scores are comparable with the published ones. Language names follow the
reference (e.g. "Farsi", "Filipino", "Maori", "Quechua", "Hebrew", "Norwegian", "Bengali"); other codes
take the project's language table name. Two XM3600 names are corrected on purpose: the reference wrote
"Ukranian" (uk) and "Portugese" (pt) into its prompts; ``language_names="reference"`` restores them.
"""

from __future__ import annotations

from model.templates import language_name

# Names the reference evaluation put into prompts where they differ from (or are missing in) the
# project language table. ``iw`` is MaXM's Hebrew code.
BENCHMARK_LANGUAGE_NAMES: dict[str, str] = {
    "fa": "Farsi",
    "fil": "Filipino",
    "mi": "Maori",
    "quz": "Quechua",
    "he": "Hebrew",
    "iw": "Hebrew",
    "no": "Norwegian",
    "bn": "Bengali",
    "hr": "Croatian",
}

# The reference evaluation's spellings where the project corrects them (mBLIP code,
# data/xm3600/convert_xm3600_to_coco.py: the XM3600 prompt names). MaXM's Hebrew (iw) is "Hebrew" there too.
REFERENCE_MISSPELLINGS: dict[str, str] = {"uk": "Ukranian", "pt": "Portugese"}
# "project": corrected names (default); "reference": the reference's spellings, for scores comparable to it.
LANGUAGE_NAMES = ("project", "reference")

CAPTION = "Caption in {lang}: "  # XM3600, xFlickrCO (trailing space as in the reference)
XGQA = "Question: {question} Short answer in English:"  # xGQA answers are English
VQAV2 = XGQA  # the English VQA baseline: the same English short-answer prompt as xGQA
MAXM = "Question: {question} Short answer in {lang}:"  # MaXM answers are in the question's language
XVNLI = 'Is it guaranteed true that "{hypothesis}"? Yes, no, or maybe? Answer in English:'
MARVL = 'Based on the two images, is it correct to say "{caption}"? Yes or no?'


def benchmark_language_name(code: str, names: str = "project") -> str:
    """English name of a benchmark language code, as the reference prompts spell it (``names="project"``:
    with the corrections above; ``"reference"``: the reference's spelling)."""
    if names not in LANGUAGE_NAMES:
        raise ValueError(f"language names {names!r}: choose one of {', '.join(LANGUAGE_NAMES)}")
    if names == "reference" and code in REFERENCE_MISSPELLINGS:
        return REFERENCE_MISSPELLINGS[code]
    if code in BENCHMARK_LANGUAGE_NAMES:
        return BENCHMARK_LANGUAGE_NAMES[code]
    return language_name(code)


def caption_prompt(lang: str, names: str = "project") -> str:
    return CAPTION.format(lang=benchmark_language_name(lang, names))


def xgqa_prompt(question: str) -> str:
    return XGQA.format(question=question.strip())


def vqav2_prompt(question: str) -> str:
    return VQAV2.format(question=question.strip())


def maxm_prompt(question: str, lang: str, names: str = "project") -> str:
    return MAXM.format(question=question.strip(), lang=benchmark_language_name(lang, names))


def xvnli_prompt(hypothesis: str) -> str:
    return XVNLI.format(hypothesis=hypothesis.strip())


def marvl_prompt(caption: str) -> str:
    return MARVL.format(caption=caption.strip())

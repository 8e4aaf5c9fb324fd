"""Instruction templates that turn a row into a (prompt, target) pair.

mBLIP trained with several English instruction templates per task, some with a language-name slot
("Caption the image in {lang}."), plus machine translations of them (Geigle et al. 2024, Sec. 3.1).
When the data pipeline provides a translated ``prompt`` column it is used as is; otherwise a template
below is chosen deterministically from the example id (same row -> same prompt, across runs).
"""

from __future__ import annotations

import hashlib

from pipeline.languages import get_language

CAPTION_TEMPLATES: tuple[str, ...] = (
    "Caption the image in {lang}.",
    "Write a short description of the image in {lang}.",
    "Describe the image briefly in {lang}.",
    "A short {lang} caption of the image:",
)
VQA_TEMPLATES: tuple[str, ...] = (
    "Answer in {lang}: {question}",
    "{question} Short answer in {lang}:",
    "Question: {question} Answer in {lang}:",
)
# Fixed prompts for inference (the reference evaluation captioned with "Caption in {lang}:").
INFERENCE_CAPTION = "Caption the image in {lang}."
INFERENCE_VQA = "Answer in {lang}: {question}"


def language_name(code: str) -> str:
    """English name of a project language code ("de" -> "German")."""
    return get_language(code).name


def _pick(templates: tuple[str, ...], key: str) -> str:
    index = int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big") % len(templates)
    return templates[index]


def caption_prompt(lang: str, key: str | None = None) -> str:
    """Captioning instruction; ``key`` (the example id) picks the template, None = the inference one."""
    template = INFERENCE_CAPTION if key is None else _pick(CAPTION_TEMPLATES, key)
    return template.format(lang=language_name(lang))


def vqa_prompt(question: str, lang: str, key: str | None = None) -> str:
    template = INFERENCE_VQA if key is None else _pick(VQA_TEMPLATES, key)
    return template.format(lang=language_name(lang), question=question.strip())

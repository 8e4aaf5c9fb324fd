"""Training and inference prompts of the trainer, from the pipeline's one template table.

The table (``pipeline/template_table.py``) holds every task's English templates; the pipeline writes each
row's instruction into its ``prompt`` column (mBLIP's mix of English and translated instructions).
Here: the inference prompts of ``mblip caption`` / ``mblip ask`` (each task's first English template,
"Caption the image in German." and "{question} Short German answer:"), and the English prompts the
trainer uses for rows without a ``prompt`` column or whose target it switched to the English answer.
"""

from __future__ import annotations

from pipeline.languages import get_language
from pipeline.schema import TASK_CAPTION, TASK_VQA
from pipeline.template_table import TASK_VQA_ENGLISH_ANSWER, TEMPLATES
from pipeline.templates import english_prompt

CAPTION_TEMPLATES: tuple[str, ...] = TEMPLATES[TASK_CAPTION]
VQA_TEMPLATES: tuple[str, ...] = TEMPLATES[TASK_VQA]


def language_name(code: str) -> str:
    """English name of a project language code ("de" -> "German")."""
    return get_language(code).name


def caption_prompt(lang: str, key: str | None = None) -> str:
    """Captioning instruction; ``key`` (the example id) picks the template, None = the inference one."""
    return english_prompt(TASK_CAPTION, lang, key)


def vqa_prompt(question: str, lang: str, key: str | None = None, english_answer: bool = False) -> str:
    """VQA instruction naming the answer language: ``lang``'s, or English when ``english_answer``."""
    task = TASK_VQA_ENGLISH_ANSWER if english_answer else TASK_VQA
    return english_prompt(task, lang, key, question=question.strip())
